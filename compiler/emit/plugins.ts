/**
 * Compiles `lua-plugins/` with TSTL, using the repo's tsconfig.lua.json, and refuses output that
 * calls a lualib helper (FE3101, see lualib-policy.ts). The output is cached by a hash of every
 * plugin source and of the config, compiler versions and check, so a rebuild of an unchanged
 * runtime is a directory lookup.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import * as tstl from "typescript-to-lua";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { ALLOW_HINT, lualibCheck, type LualibFinding } from "./lualib-policy.ts";
import { multiReturnFindings, type MultiReturnFinding } from "./multireturn-check.ts";
import { namespaceChainFindings, type NamespaceChainFinding } from "./namespace-chain-check.ts";

export interface PluginBuild {
  /** Hash of the inputs; names the cache directory. */
  readonly hash: string;
  /** Directory holding the compiled `.lua` tree (module paths as TSTL emits them). */
  readonly dir: string | undefined;
  readonly diagnostics: readonly Diagnostic[];
  readonly cached: boolean;
}

function listFiles(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(full, base));
    else if (e.isFile()) out.push(path.relative(base, full).split(path.sep).join("/"));
  }
  return out.sort();
}

// The check's own sources are inputs too: a cache entry accepted by an older check is not reused.
const CHECK_SOURCES = ["./plugins.ts", "./lualib-policy.ts", "./multireturn-check.ts", "./namespace-chain-check.ts"].map((f) => fileURLToPath(new URL(f, import.meta.url)));

/** Hash over plugin sources, tsconfig.lua.json, the TSTL/TypeScript versions and the lualib check. */
export function pluginSourcesHash(repoRoot: string): string {
  const h = createHash("sha256");
  h.update(`tstl ${tstl.version}\nts ${ts.version}\n`);
  for (const f of CHECK_SOURCES) h.update(readFileSync(f));
  const config = path.join(repoRoot, "tsconfig.lua.json");
  h.update(existsSync(config) ? readFileSync(config) : "");
  const src = path.join(repoRoot, "lua-plugins");
  for (const f of listFiles(src)) {
    h.update(`\0${f}\0`);
    h.update(readFileSync(path.join(src, f)));
  }
  return h.digest("hex");
}

function toDiagnostic(d: ts.Diagnostic, repoRoot: string): Diagnostic {
  const text = ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n")[0] ?? "";
  let where = "lua-plugins";
  if (d.file !== undefined && d.start !== undefined) {
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    where = `${path.relative(repoRoot, d.file.fileName)}:${line + 1}:${character + 1}`;
  }
  return diag("FE3001", where, `TS${d.code}: ${text}`);
}

/**
 * Modules the bundler writes next to the plugins (`generated.policy`, `generated.fhir_r4`) do not
 * exist when TSTL runs, so its dependency resolution must skip them, on top of the config's own list.
 */
export const GENERATED_MODULES = ["generated.policy", "generated.fhir_r4"] as const;

function noResolvePaths(config: string): string[] {
  const read = ts.readConfigFile(config, (f) => ts.sys.readFile(f));
  const tstlOptions = (read.config as { tstl?: { noResolvePaths?: unknown } } | undefined)?.tstl;
  const own = Array.isArray(tstlOptions?.noResolvePaths) ? (tstlOptions.noResolvePaths as unknown[]).filter((x): x is string => typeof x === "string") : [];
  return [...new Set([...own, ...GENERATED_MODULES])];
}

/** tsconfig.lua.json's options as buildPlugins compiles with them, output to `outDir`. */
export function pluginCompileConfig(
  repoRoot: string,
  outDir: string,
): { readonly options: tstl.CompilerOptions; readonly fileNames: readonly string[] } | { readonly diagnostics: readonly Diagnostic[] } {
  const config = path.join(repoRoot, "tsconfig.lua.json");
  if (!existsSync(config)) return { diagnostics: [diag("FE3002", "tsconfig.lua.json", `not found in ${repoRoot}`)] };
  const parsed = tstl.parseConfigFileWithSystem(config, { outDir, noResolvePaths: noResolvePaths(config) });
  if (parsed.errors.length > 0) return { diagnostics: parsed.errors.map((d) => toDiagnostic(d, repoRoot)) };
  return { options: parsed.options, fileNames: parsed.fileNames };
}

function lualibDiagnostic(f: LualibFinding, repoRoot: string): Diagnostic {
  const file = path.relative(repoRoot, f.file).split(path.sep).join("/");
  const where = f.line === undefined ? file : `${file}:${f.line}:${f.column ?? 1}`;
  const what = f.line === undefined ? `imports ${f.helpers.join(", ")} from lualib_bundle` : `compiles to ${f.helpers.join(", ")}`;
  return diag("FE3101", where, `${what}: ${f.rule.reason}`, `${f.rule.hint}; ${ALLOW_HINT}`);
}

function multiReturnDiagnostic(f: MultiReturnFinding, repoRoot: string): Diagnostic {
  const file = path.relative(repoRoot, f.file).split(path.sep).join("/");
  return diag(
    "FE3102",
    `${file}:${f.line}:${f.column}`,
    "a multiple-return call compared as one value: TSTL packs its values into a table, so the comparison is always the same",
    "destructure the first value: const [i] = find(s, p); if (i !== undefined) ...",
  );
}

function namespaceChainDiagnostic(f: NamespaceChainFinding, repoRoot: string): Diagnostic {
  const file = path.relative(repoRoot, f.file).split(path.sep).join("/");
  return diag(
    "FE3103",
    `${file}:${f.line}:${f.column}`,
    "an optional chain on a namespace import's member: TSTL compiles its second half to a lookup in this module's own exports, which fails at run time",
    "take the member into a local first: const cfg = ns.member; const x = cfg === undefined ? undefined : cfg.x",
  );
}

/**
 * TSTL on `program`, as `tstl.transpileProject` runs it, plus the lualib check (FE3101), the
 * multiple-return comparison check (FE3102) and the namespace optional-chain check (FE3103) on every module. Returns the errors; output goes through `writeFile` (the program's outDir by default).
 */
export function transpilePlugins(program: ts.Program, repoRoot: string, writeFile?: ts.WriteFileCallback): readonly Diagnostic[] {
  const check = lualibCheck();
  const emitted = new tstl.Transpiler().emit({ program, plugins: [check.plugin], ...(writeFile === undefined ? {} : { writeFile }) });
  const all = ts.sortAndDeduplicateDiagnostics([...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics]);
  const errors = all.filter((d) => d.category === ts.DiagnosticCategory.Error).map((d) => toDiagnostic(d, repoRoot));
  return [
    ...errors,
    ...check.findings().map((f) => lualibDiagnostic(f, repoRoot)),
    ...multiReturnFindings(program).map((f) => multiReturnDiagnostic(f, repoRoot)),
    ...namespaceChainFindings(program).map((f) => namespaceChainDiagnostic(f, repoRoot)),
  ];
}

/** Compiles (or finds in the cache) the runtime plugins of the repo at `repoRoot`. */
export function buildPlugins(repoRoot: string): PluginBuild {
  const hash = pluginSourcesHash(repoRoot);
  const cacheRoot = path.join(repoRoot, "build", "lua-cache");
  const dir = path.join(cacheRoot, hash);
  if (existsSync(dir)) return { hash, dir, diagnostics: [], cached: true };

  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  const config = pluginCompileConfig(repoRoot, tmp);
  if ("diagnostics" in config) return { hash, dir: undefined, diagnostics: config.diagnostics, cached: false };
  mkdirSync(tmp, { recursive: true });
  const diagnostics = transpilePlugins(ts.createProgram(config.fileNames, config.options), repoRoot);
  if (diagnostics.length > 0) {
    rmSync(tmp, { recursive: true, force: true });
    return { hash, dir: undefined, diagnostics, cached: false };
  }
  try {
    renameSync(tmp, dir);
  } catch {
    // Another build won the race with the same inputs, so the same output is already there.
    rmSync(tmp, { recursive: true, force: true });
  }
  return { hash, dir, diagnostics: [], cached: false };
}
