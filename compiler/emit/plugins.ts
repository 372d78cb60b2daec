/**
 * Compiles `lua-plugins/` with TSTL, using the repo's tsconfig.lua.json. The output is cached by
 * a hash of every plugin source and of the config and compiler versions, so a rebuild of an
 * unchanged runtime is a directory lookup.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import * as tstl from "typescript-to-lua";
import { diag, type Diagnostic } from "../diagnostics.ts";

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

/** Hash over plugin sources, tsconfig.lua.json and the TSTL/TypeScript versions. */
export function pluginSourcesHash(repoRoot: string): string {
  const h = createHash("sha256");
  h.update(`tstl ${tstl.version}\nts ${ts.version}\n`);
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

/** Compiles (or finds in the cache) the runtime plugins of the repo at `repoRoot`. */
export function buildPlugins(repoRoot: string): PluginBuild {
  const hash = pluginSourcesHash(repoRoot);
  const cacheRoot = path.join(repoRoot, "build", "lua-cache");
  const dir = path.join(cacheRoot, hash);
  if (existsSync(dir)) return { hash, dir, diagnostics: [], cached: true };
  const config = path.join(repoRoot, "tsconfig.lua.json");
  if (!existsSync(config)) return { hash, dir: undefined, diagnostics: [diag("FE3002", "tsconfig.lua.json", `not found in ${repoRoot}`)], cached: false };

  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  const result = tstl.transpileProject(config, { outDir: tmp, noResolvePaths: noResolvePaths(config) });
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    rmSync(tmp, { recursive: true, force: true });
    return { hash, dir: undefined, diagnostics: errors.map((d) => toDiagnostic(d, repoRoot)), cached: false };
  }
  try {
    renameSync(tmp, dir);
  } catch {
    // Another build won the race with the same inputs, so the same output is already there.
    rmSync(tmp, { recursive: true, force: true });
  }
  return { hash, dir, diagnostics: [], cached: false };
}
