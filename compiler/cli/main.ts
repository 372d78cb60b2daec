/**
 * `fhir-edge <command>`: build, check, up, down, status, reload, rollback, bootstrap,
 * verify-audit, demo.
 * Returns the exit code instead of exiting, so tests can call it.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { BuildOptions } from "../emit/gateway-conf.ts";
import type { Diagnostic } from "../diagnostics.ts";
import { UserError } from "../errors.ts";
import type { PolicyIR } from "../ir.ts";
import { bootstrap } from "../runtime.ts";
import { stateDirFrom } from "../state.ts";
import { DEMO_COMMANDS } from "../../demo/commands.ts";

// The compiler pulls in TypeScript and TSTL (over a second to load); only commands that build
// or control a bundle import it, so `bootstrap` and `--help` stay fast.
const compiler = async () => {
  const [bundle, control, diagnostics, load, validate] = await Promise.all([
    import("../bundle.ts"),
    import("../control.ts"),
    import("../diagnostics.ts"),
    import("../load.ts"),
    import("../validate.ts"),
  ]);
  return { ...bundle, ...control, ...diagnostics, ...load, ...validate };
};

const USAGE = `usage: fhir-edge <command> [options]

commands:
  check       validate the policy and print every diagnostic
  build       check, then write <state>/bundles/<version>/ (prints the version)
  up          build, make it current and start nginx (--foreground: stay attached)
  down        stop nginx gracefully
  status      running or not, current and previous version
  reload      build, nginx -t, switch current, HUP, wait for /healthz to show the new version
  rollback    switch back to the previous version, HUP, wait likewise
  bootstrap   check the nginx/Lua runtime and test tools; install them with apt when root
              (--check: only check)
  verify-audit [PATH...] [--key FILE] [--public-key FILE] [--checkpoints PATH]
              check audit spools or exports (a directory of *.jsonl, or a file): every chain,
              seal hash and checkpoint (HMAC with --key, Ed25519 with --public-key: a PEM
              public key, or the private key); prints each finding as file:line and exits 1
              on any. Without PATH: the current bundle's spool and file sinks in --state, its
              keys and its checkpoint sinks
${DEMO_COMMANDS.map((c) => `  demo ${c.usage}\n              ${c.summary}`).join("\n")}
              both ask the stack \`npm start\` runs; \`fhir-edge demo --help\` lists every option

options:
  --policy FILE    policy file (default ./gateway.policy.ts)
  --state DIR      state dir (default $FHIR_EDGE_STATE or ./dist)
  --listen ADDR    gateway address (default 127.0.0.1:8080)
  --admin ADDR     admin address for /metrics and /healthz (default 127.0.0.1:9145)
  --workers N      nginx worker processes (default 1)
  --help
`;

interface Flags {
  readonly policy: string;
  readonly state: string;
  readonly options: Partial<BuildOptions>;
  readonly foreground: boolean;
  readonly checkOnly: boolean;
}

type Out = (line: string) => void;

function parseFlags(args: string[]): Flags | string {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      options: {
        policy: { type: "string" },
        state: { type: "string" },
        listen: { type: "string" },
        admin: { type: "string" },
        workers: { type: "string" },
        foreground: { type: "boolean" },
        check: { type: "boolean" },
      },
    });
  } catch (e) {
    return (e as Error).message;
  }
  const v = parsed.values;
  const options: { -readonly [K in keyof BuildOptions]?: BuildOptions[K] } = {};
  if (v.listen !== undefined) options.listen = v.listen;
  if (v.admin !== undefined) options.admin = v.admin;
  if (v.workers !== undefined) {
    const n = Number(v.workers);
    if (!Number.isInteger(n) || n < 1 || n > 256) return `--workers must be an integer 1-256, got ${v.workers}`;
    options.workers = n;
  }
  return {
    policy: v.policy ?? "gateway.policy.ts",
    state: stateDirFrom(v.state),
    options,
    foreground: v.foreground ?? false,
    checkOnly: v.check ?? false,
  };
}

async function printDiagnostics(ds: readonly Diagnostic[], err: Out): Promise<void> {
  const { formatDiagnostic } = await import("../diagnostics.ts");
  for (const d of ds) err(formatDiagnostic(d));
  if (ds.length > 0) err(`${ds.length} error${ds.length === 1 ? "" : "s"}`);
}

async function check(f: Flags, out: Out, err: Out): Promise<number> {
  const { loadPolicy, validatePolicy } = await compiler();
  const loaded = await loadPolicy(f.policy);
  const validated = loaded.raw === undefined ? { diagnostics: [], policy: undefined } : validatePolicy(loaded.raw, loaded.tenantSources);
  const ds = [...loaded.diagnostics, ...validated.diagnostics];
  await printDiagnostics(ds, err);
  if (ds.length > 0 || validated.policy === undefined) return 1;
  out(`ok: ${path.relative(process.cwd(), path.resolve(f.policy))}, ${validated.policy.tenants.length} tenant(s)`);
  return 0;
}

async function build(f: Flags, out: Out, err: Out): Promise<string | undefined> {
  const { buildBundle } = await compiler();
  const r = await buildBundle({ policyFile: f.policy, stateDir: f.state, options: f.options });
  await printDiagnostics(r.diagnostics, err);
  if (r.version === undefined) return undefined;
  out(`${r.reused ? "unchanged" : "built"} ${r.version} ${r.dir ?? ""}`);
  return r.version;
}

async function upCommand(f: Flags, out: Out, err: Out): Promise<number> {
  const { status, testConf, activate, up } = await compiler();
  const version = await build(f, out, err);
  if (version === undefined) return 1;
  if (status({ stateDir: f.state }).running) {
    err("already running; use `fhir-edge reload` to switch to a new build");
    return 1;
  }
  const t = testConf(f.state, version);
  if (!t.ok) {
    err(`nginx -t failed:\n${t.output}`);
    return 1;
  }
  activate(f.state, version);
  const r = await up({ stateDir: f.state, foreground: f.foreground });
  if (r.child === undefined) {
    out(`up: pid ${String(r.pid)}, version ${version}`);
    return 0;
  }
  const child = r.child;
  const stop = (): void => {
    child.kill("SIGQUIT");
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return await new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 0)));
}

async function run(cmd: string, f: Flags, out: Out, err: Out): Promise<number> {
  switch (cmd) {
    case "check":
      return check(f, out, err);
    case "build":
      return (await build(f, out, err)) === undefined ? 1 : 0;
    case "up":
      return upCommand(f, out, err);
    case "down": {
      const { down } = await compiler();
      out((await down({ stateDir: f.state })) ? "stopped" : "not running");
      return 0;
    }
    case "status": {
      const { status } = await compiler();
      const s = status({ stateDir: f.state });
      out(`running: ${s.running ? `yes (pid ${String(s.pid)})` : "no"}`);
      out(`current: ${s.current ?? "-"}`);
      out(`previous: ${s.previous ?? "-"}`);
      return 0;
    }
    case "reload": {
      const { reload } = await compiler();
      const r = await reload({ policyFile: f.policy, stateDir: f.state, options: f.options });
      await printDiagnostics(r.build.diagnostics, err);
      if (!r.ok) {
        err(`reload refused: ${r.error}`);
        return 1;
      }
      const s = r.switched;
      out(s.signalled ? `reloaded: ${s.version} (previous ${s.previous ?? "-"})` : `current: ${s.version} (nginx not running or already current)`);
      return 0;
    }
    case "rollback": {
      const { rollback } = await compiler();
      const s = await rollback({ stateDir: f.state });
      out(`rolled back to ${s.version}${s.signalled ? "" : " (nginx not running)"}`);
      return 0;
    }
    case "bootstrap": {
      const r = bootstrap({ install: !f.checkOnly, log: out });
      out(`runtime: ${r.runtime.kind} ${r.runtime.nginx}${r.installed ? " (installed missing packages)" : ""}`);
      return 0;
    }
    default:
      err(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}

interface DemoModule {
  runDemoCommand(argv: string[]): Promise<number | void> | number | void;
}

async function demo(argv: string[]): Promise<number> {
  // A variable specifier keeps the demo (and its heavy deps) out of every other command.
  const spec = "../../demo/cli.ts";
  const mod = (await import(spec)) as DemoModule;
  const code = await mod.runDemoCommand(argv);
  return typeof code === "number" ? code : 0;
}

/** What `verify-audit` checks: the paths given, or what the current bundle in the state dir writes. */
interface AuditTargets {
  sources: string[];
  checkpoints: string[];
  keyFile: string | undefined;
  /** A PEM public key, or the Ed25519 private key to derive it from. */
  publicKeyFile: string | undefined;
}

function auditTargets(args: string[]): AuditTargets | string {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { state: { type: "string" }, key: { type: "string" }, "public-key": { type: "string" }, checkpoints: { type: "string", multiple: true } } });
  } catch (e) {
    return (e as Error).message;
  }
  const v = parsed.values;
  const checkpoints = v.checkpoints ?? [];
  const publicKey = v["public-key"];
  for (const p of [...parsed.positionals, ...checkpoints, ...(v.key === undefined ? [] : [v.key]), ...(publicKey === undefined ? [] : [publicKey])]) if (!existsSync(p)) return `no such file or directory: ${p}`;
  if (parsed.positionals.length > 0) return { sources: parsed.positionals, checkpoints, keyFile: v.key, publicKeyFile: publicKey };
  const state = stateDirFrom(v.state);
  const current = path.join(state, "current");
  if (!existsSync(path.join(current, "manifest.json"))) return `no current bundle in ${state}: give a PATH, or --state of a built gateway`;
  const audit = (JSON.parse(readFileSync(path.join(current, "manifest.json"), "utf8")) as { ir: PolicyIR }).ir.audit;
  if (audit === undefined || audit === null) return `the current bundle in ${state} has no audit; give a PATH`;
  const sources = [audit.spool_dir];
  const fromSinks: string[] = [];
  for (const sink of audit.sinks) {
    if (sink.kind !== "file" || !existsSync(sink.dir)) continue;
    (sink.records === "all" ? sources : fromSinks).push(sink.dir);
  }
  const signer = audit.ed25519_key_file;
  return {
    sources,
    checkpoints: [...checkpoints, ...fromSinks],
    keyFile: v.key ?? (existsSync(audit.key_file) ? audit.key_file : undefined),
    publicKeyFile: publicKey ?? (signer !== null && existsSync(signer) ? signer : undefined),
  };
}

async function verifyAuditCommand(args: string[], out: Out, err: Out): Promise<number> {
  const t = auditTargets(args);
  if (typeof t === "string") {
    err(`verify-audit: ${t}\n\n${USAGE}`);
    return 2;
  }
  const { verifyAudit, formatFinding } = await import("../audit/verify.ts");
  let publicKey: KeyObject | undefined;
  if (t.publicKeyFile !== undefined) {
    try {
      // A public key as it is, or the one a private key holds (never kept).
      publicKey = createPublicKey(readFileSync(t.publicKeyFile));
    } catch (e) {
      err(`verify-audit: ${t.publicKeyFile} is not a PEM key: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (publicKey.asymmetricKeyType !== "ed25519") {
      err(`verify-audit: ${t.publicKeyFile} is a ${publicKey.asymmetricKeyType ?? "non-asymmetric"} key, not Ed25519\n\n${USAGE}`);
      return 2;
    }
  }
  const r = verifyAudit({ sources: t.sources, checkpoints: t.checkpoints, ...(t.keyFile === undefined ? {} : { key: readFileSync(t.keyFile) }), ...(publicKey === undefined ? {} : { publicKey }) });
  for (const f of r.findings) out(formatFinding(f));
  for (const n of r.notes) err(`note: ${n}`);
  for (const s of r.sources) out(`${s.kind} ${s.source}: ${s.streams} stream(s), ${s.seals} seal(s), ${s.events} event(s), ${s.checkpoints} checkpoint(s) matched`);
  for (const p of t.checkpoints) out(`checkpoints ${p}`);
  const using = [...(t.keyFile === undefined ? [] : [t.keyFile]), ...(t.publicKeyFile === undefined ? [] : [`the public key of ${t.publicKeyFile}`])];
  out(`${r.findings.length === 0 ? "ok" : "FAILED"}: ${r.findings.length} finding(s), ${r.macsChecked} checkpoint MAC(s) checked${using.length === 0 ? " (no key)" : ` with ${using.join(" and ")}`}`);
  return r.findings.length === 0 ? 0 : 1;
}

export async function main(argv: string[], out: Out = console.log, err: Out = console.error): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "demo") return demo(rest);
  if (cmd === "verify-audit" && !rest.includes("--help")) return verifyAuditCommand(rest, out, err);
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help" || rest.includes("--help")) {
    out(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  const f = parseFlags(rest);
  if (typeof f === "string") {
    err(`${f}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(cmd, f, out, err);
  } catch (e) {
    if (e instanceof UserError) {
      err(e.message);
      return 1;
    }
    throw e;
  }
}
