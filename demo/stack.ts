/**
 * `npm start`: bootstrap the runtime, start the demo FHIR upstream and authorization server,
 * build the example policy and run the gateway in the foreground. Ctrl-C stops all three.
 *
 *   npm start -- [--listen ADDR] [--admin ADDR] [--upstream-port N] [--authz-port N] [--state DIR]
 *
 * Defaults: gateway 127.0.0.1:8080, admin 127.0.0.1:9145, upstream 8103, authz 8104; the
 * environment variables FHIR_EDGE_LISTEN and FHIR_EDGE_ADMIN override the first two.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { buildBundle, PACKAGE_ROOT, stateDirFrom } from "../compiler/bundle.ts";
import { activate, down, status, testConf, up, waitForVersion } from "../compiler/control.ts";
import { formatDiagnostic } from "../compiler/diagnostics.ts";
import { bootstrap } from "../compiler/runtime.ts";
import { startAuthz, type Authz } from "./authz.ts";
import { DEMO_STATE_FILE, type DemoState } from "./cli.ts";
import { startUpstream, type Upstream } from "./upstream.ts";

const TENANTS = ["acme", "globex"] as const;
const AUDIT_BASE = "audit";

/** The demo's audit key (checkpoint MACs), made once per state dir and kept, so old spools still verify. */
function auditKey(stateDir: string): string {
  const file = path.join(stateDir, "audit.key");
  mkdirSync(stateDir, { recursive: true });
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600 });
  return file;
}
const POLICY = path.join(PACKAGE_ROOT, "examples", "gateway.policy.ts");

interface StackOptions {
  readonly listen: string;
  readonly admin: string;
  readonly upstreamPort: number;
  readonly authzPort: number;
  readonly stateDir: string;
}

function parseOptions(argv: string[]): StackOptions {
  const { values: v } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      listen: { type: "string" },
      admin: { type: "string" },
      "upstream-port": { type: "string" },
      "authz-port": { type: "string" },
      state: { type: "string" },
    },
  });
  const port = (s: string | undefined, fallback: number, flag: string): number => {
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new Error(`--${flag} must be a port number, got ${s}`);
    return n;
  };
  return {
    listen: v.listen ?? process.env["FHIR_EDGE_LISTEN"] ?? "127.0.0.1:8080",
    admin: v.admin ?? process.env["FHIR_EDGE_ADMIN"] ?? "127.0.0.1:9145",
    upstreamPort: port(v["upstream-port"], 8103, "upstream-port"),
    authzPort: port(v["authz-port"], 8104, "authz-port"),
    stateDir: path.resolve(stateDirFrom(v.state)),
  };
}

/** The address a local client dials for a listen address (0.0.0.0 and * mean loopback). */
function dialable(listen: string): string {
  const m = /^(.*):([0-9]+)$/.exec(listen);
  if (m === null) return `127.0.0.1:${listen}`;
  const host = m[1] === "" || m[1] === "0.0.0.0" || m[1] === "*" ? "127.0.0.1" : (m[1] ?? "127.0.0.1");
  return `${host}:${m[2] ?? ""}`;
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const log = (s: string): void => console.log(s);

  const rt = bootstrap({ install: true, log });
  log(`runtime: ${rt.runtime.kind} ${rt.runtime.nginx}`);

  if (status({ stateDir: o.stateDir }).running) {
    log(`stopping a gateway left running in ${o.stateDir}`);
    await down({ stateDir: o.stateDir });
  }

  const started: { upstream?: Upstream; authz?: Authz; nginx?: ChildProcess } = {};
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      const nginx = started.nginx;
      if (nginx !== undefined && nginx.exitCode === null && nginx.signalCode === null) {
        const exited = new Promise((r) => nginx.once("exit", r));
        nginx.kill("SIGQUIT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill("SIGKILL");
      }
      rmSync(path.join(o.stateDir, DEMO_STATE_FILE), { force: true });
      await started.authz?.close();
      await started.upstream?.close();
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  try {
    // The audit trail's FHIR sink writes AuditEvents to a base of their own, apart from both tenants' data.
    started.upstream = await startUpstream({ port: o.upstreamPort, tenants: TENANTS, empty: [AUDIT_BASE] });
    started.authz = await startAuthz({ port: o.authzPort });
    const upstream = started.upstream;
    const authz = started.authz;
    for (const t of TENANTS) process.env[`FHIR_EDGE_UPSTREAM_${t.toUpperCase()}`] = upstream.baseUrl(t);
    process.env["FHIR_EDGE_DEMO_ISSUER"] = authz.issuer;
    process.env["FHIR_EDGE_AUDIT_FHIR_URL"] = upstream.baseUrl(AUDIT_BASE);
    process.env["FHIR_EDGE_AUDIT_KEY"] = auditKey(o.stateDir);
    // nginx inherits it and reads it through the conf's `env` line; it never lands in the bundle.
    process.env["FHIR_EDGE_DEMO_INTROSPECTION_SECRET"] = authz.introspectionClient.secret;

    const built = await buildBundle({ policyFile: POLICY, stateDir: o.stateDir, options: { listen: o.listen, admin: o.admin } });
    for (const d of built.diagnostics) console.error(formatDiagnostic(d));
    if (built.version === undefined) throw new Error("the example policy does not build");
    const t = testConf(o.stateDir, built.version);
    if (!t.ok) throw new Error(`nginx -t failed:\n${t.output}`);
    activate(o.stateDir, built.version);
    const nginx = (await up({ stateDir: o.stateDir, foreground: true })).child;
    if (nginx === undefined) throw new Error("nginx did not start");
    started.nginx = nginx;
    nginx.once("exit", (code, signal) => {
      if (!stopping) {
        console.error(`nginx exited (${signal ?? String(code)}); see ${path.join(o.stateDir, "logs", "error.log")}`);
        void stop(1);
      }
    });
    if (!(await waitForVersion(o.admin, built.version, 10_000))) throw new Error(`gateway did not come up; see ${path.join(o.stateDir, "logs", "error.log")}`);

    const gateway = `http://${dialable(o.listen)}`;
    const state: DemoState = {
      pid: process.pid,
      gateway,
      admin: `http://${dialable(o.admin)}`,
      upstream: upstream.url,
      tenants: TENANTS,
      authz: { issuer: authz.issuer, tokenEndpoint: authz.tokenEndpoint, client: authz.demoClient },
    };
    writeFileSync(path.join(o.stateDir, DEMO_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);

    const patient = upstream.patients("acme")[0] ?? "";
    const token = await authz.mintToken({ tenant: "acme", scope: "patient/*.rs launch/patient", patient, expiresIn: 3600 });
    log("");
    log(`fhir-edge demo is up (bundle ${built.version.slice(0, 12)})`);
    log(`  gateway      ${gateway}  (FHIR bases: ${TENANTS.map((x) => `${gateway}/${x}/fhir`).join(", ")})`);
    log(`  metrics      ${state.admin}/metrics`);
    log(`  upstream     ${upstream.url}  (Medplum FhirRouter, in memory)`);
    log(`  authz        ${authz.issuer}  (oidc-provider; client ${authz.demoClient.id})`);
    log(`  state        ${o.stateDir}`);
    log(`  audit        ${path.join(o.stateDir, "audit", "file", "audit.jsonl")}  (spool ${path.join(o.stateDir, "audit", "spool")}; check it: npx fhir-edge verify-audit --state ${o.stateDir})`);
    log(`  AuditEvents  ${upstream.baseUrl(AUDIT_BASE)}/AuditEvent  (FHIR sink, IHE BALP; search ?patient=, ?date=)`);
    log("");
    log("Try it (the token is valid for an hour; mint more with `npx fhir-edge demo token --tenant acme --scope ...`):");
    // A patient token may search only its own compartment: name the patient.
    log(`  curl -s -H 'Authorization: Bearer ${token}' '${gateway}/acme/fhir/Observation?patient=${patient}'`);
    log("");
    log("Ctrl-C stops everything.");
    return await new Promise<number>(() => undefined);
  } catch (e) {
    console.error(`npm start failed: ${(e as Error).message}`);
    return stop(1);
  }
}

await main();
