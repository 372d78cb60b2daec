/**
 * A gateway of a test's own: nginx built from a policy the test gives as data, on its own
 * ephemeral ports and state dir, so a test of limits or worker counts leaves the shared stack
 * alone. The policy is written to a file that imports nothing: the DSL's unit helpers return
 * plain data (`perMinute(600)` is `{ tokens: 600, perMs: 60000 }`), so JSON carries it.
 *
 * The shared error-log guard watches only the shared stack's log; `newSeriousLines()` is the
 * same check for this one. Usable outside vitest too (bench, scripts): it registers no hooks.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildBundle } from "../../compiler/bundle.ts";
import { activate, down, reload, up, waitForVersion } from "../../compiler/control.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import type { BudgetProps, PolicyInput, TenantProps } from "../../policy-dsl/index.ts";
import { freePort } from "./ports.ts";

export interface OwnGateway {
  readonly url: string;
  readonly admin: string;
  readonly port: number;
  readonly stateDir: string;
  readonly errorLog: string;
  /** The bundle version it runs: the first build's, then each reload's. */
  readonly version: string;
  /** `[error]`, `[crit]`, `[alert]` and `[emerg]` lines added since the last call, minus the allowed ones. */
  newSeriousLines(allowed?: readonly RegExp[]): string[];
  /** Prometheus text of the admin listener. */
  metrics(): Promise<string>;
  /** `fhir-edge reload` with a new policy: build, nginx -t, switch, HUP, wait for its version. */
  reload(policy: PolicyInput): Promise<string>;
  /**
   * A graceful restart: QUIT (the workers finish their requests and close their audit streams,
   * `down`), then the same bundle again on the same ports and state dir, which is kept.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const SERIOUS = /\[(error|crit|alert|emerg)\]/;

/** A tenant without tokens at `/<id>`, proxied to `<upstream>/<id>`, with these budgets. */
export function anonymousTenant(id: string, upstream: string, budgets: readonly BudgetProps[]): TenantProps {
  return { id, pathPrefix: `/${id}`, upstream: { url: `${upstream}/${id}` }, anonymous: true, budgets };
}

export async function startGateway(policy: PolicyInput, opts: { workers?: number; port?: number } = {}): Promise<OwnGateway> {
  const stateDir = mkdtempSync(path.join(tmpdir(), "fhir-edge-own-"));
  const policyFile = path.join(stateDir, "gateway.policy.ts");
  writeFileSync(policyFile, `export default ${JSON.stringify(policy, null, 2)};\n`);
  const port = opts.port ?? (await freePort());
  const adminPort = await freePort();
  const options = { listen: `127.0.0.1:${port}`, admin: `127.0.0.1:${adminPort}`, workers: opts.workers ?? 1 };
  const built = await buildBundle({ policyFile, stateDir, options });
  if (built.version === undefined) {
    rmSync(stateDir, { recursive: true, force: true });
    throw new Error(`policy does not build:\n${built.diagnostics.map(formatDiagnostic).join("\n")}`);
  }
  activate(stateDir, built.version);
  let version = built.version;
  const started = async (): Promise<void> => {
    await up({ stateDir, waitMs: 0 });
    if (!(await waitForVersion(`127.0.0.1:${adminPort}`, version, 10_000))) throw new Error(`own gateway did not report version ${version} within 10 s`);
  };
  await started();
  const admin = `http://127.0.0.1:${adminPort}`;
  const errorLog = path.join(stateDir, "logs", "error.log");
  let offset = 0;
  return {
    url: `http://127.0.0.1:${port}`,
    admin,
    port,
    stateDir,
    errorLog,
    get version() {
      return version;
    },
    newSeriousLines(allowed = []) {
      const all = existsSync(errorLog) ? readFileSync(errorLog) : Buffer.alloc(0);
      const text = all.subarray(offset).toString("utf8");
      offset = all.length;
      return text.split("\n").filter((l) => SERIOUS.test(l) && !allowed.some((re) => re.test(l)));
    },
    async metrics() {
      return (await fetch(`${admin}/metrics`)).text();
    },
    async reload(next) {
      writeFileSync(policyFile, `export default ${JSON.stringify(next, null, 2)};\n`);
      const r = await reload({ policyFile, stateDir, options });
      if (!r.ok) throw new Error(`reload failed: ${r.error}\n${r.build.diagnostics.map(formatDiagnostic).join("\n")}`);
      version = r.switched.version;
      return version;
    },
    async restart() {
      await down({ stateDir });
      await started();
    },
    async stop() {
      await down({ stateDir });
      if (process.env["FHIR_EDGE_KEEP_STATE"] === undefined) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
