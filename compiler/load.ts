/**
 * Loads a policy: evaluates `gateway.policy.ts` (its default export) with tsx, reads
 * `tenants/*.yaml` next to it, and lists every input file with its sha256 for the bundle version.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { tsImport } from "tsx/esm/api";
import { parseDocument } from "yaml";
import { diag, type Diagnostic } from "./diagnostics.ts";
import { validateTenantYamlSchema } from "./schema.ts";
import { parseDuration, parseRate, tokens } from "../policy-dsl/units.ts";

export interface InputFile {
  /** Relative to the policy file's directory, `/`-separated. */
  readonly path: string;
  readonly sha256: string;
}

export interface LoadResult {
  /** The merged, unvalidated policy value; undefined when it could not be evaluated. */
  readonly raw: unknown;
  /** Per merged tenant: the YAML file it came from, or undefined for the policy file. */
  readonly tenantSources: readonly (string | undefined)[];
  readonly inputs: readonly InputFile[];
  readonly diagnostics: readonly Diagnostic[];
}

export function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

const LOCAL_SOURCE = /\.(m|c)?(t|j)sx?$/;

/** The policy file plus the local modules it imports, transitively; packages are not inputs. */
function localModuleGraph(entry: string): string[] {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith(".")) continue;
      const resolved = resolveLocal(path.resolve(path.dirname(file), ref.fileName));
      if (resolved !== undefined) stack.push(resolved);
    }
  }
  return [...seen];
}

function resolveLocal(base: string): string | undefined {
  const candidates = [base, base.replace(/\.js$/, ".ts"), `${base}.ts`, path.join(base, "index.ts")];
  return candidates.find((c) => LOCAL_SOURCE.test(c) && existsSync(c));
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0] ?? msg;
}

/** Maps the `fhir-edge` specifier to this install's DSL (tsconfig `paths`). */
const DSL_ALIAS_TSCONFIG = fileURLToPath(new URL("./policy.tsconfig.json", import.meta.url));

/**
 * A policy beside an installed fhir-edge (or inside this package, by self-reference) imports
 * that one. A policy kept anywhere else imports the DSL of the CLI that evaluates it.
 */
function resolvesDsl(file: string): boolean {
  try {
    createRequire(file).resolve("fhir-edge");
    return true;
  } catch {
    return false;
  }
}

/**
 * tsImport loads in its own namespace, so a later build in the same process sees edits. Outside
 * a `"type": "module"` package tsx evaluates the policy as CommonJS, whose require() reads the
 * tsconfig from TSX_TSCONFIG_PATH when tsImport registers it (synchronously, so the variable is
 * only set for that call); an ES module policy gets the `tsconfig` option.
 */
function importPolicy(file: string): Promise<unknown> {
  const url = pathToFileURL(file).href;
  if (resolvesDsl(file)) return tsImport(url, import.meta.url) as Promise<unknown>;
  const previous = process.env["TSX_TSCONFIG_PATH"];
  process.env["TSX_TSCONFIG_PATH"] = DSL_ALIAS_TSCONFIG;
  try {
    return tsImport(url, { parentURL: import.meta.url, tsconfig: DSL_ALIAS_TSCONFIG }) as Promise<unknown>;
  } finally {
    if (previous === undefined) delete process.env["TSX_TSCONFIG_PATH"];
    else process.env["TSX_TSCONFIG_PATH"] = previous;
  }
}

async function evaluatePolicy(file: string): Promise<{ value: unknown; diagnostics: Diagnostic[] }> {
  let mod: { default?: unknown };
  try {
    mod = (await importPolicy(file)) as { default?: unknown };
  } catch (e) {
    const msg = firstLine(e);
    const hint = msg.includes("'fhir-edge'") ? "install fhir-edge where the policy can resolve it (npm i -D fhir-edge), or import the DSL by relative path" : undefined;
    return { value: undefined, diagnostics: [diag("FE0002", "", `evaluating ${path.basename(file)} failed: ${msg}`, hint)] };
  }
  let value = mod.default;
  // Outside a `"type": "module"` package tsx compiles the policy as CommonJS, and the import
  // namespace then wraps `module.exports`, whose own `default` is the policy.
  if (typeof value === "object" && value !== null && (value as { __esModule?: unknown }).__esModule === true) {
    value = (value as { default: unknown }).default;
  }
  if (value === undefined) {
    return { value: undefined, diagnostics: [diag("FE0003", "", `${path.basename(file)} has no default export`, "export default definePolicy({ ... })")] };
  }
  return { value, diagnostics: [] };
}

type YamlTenant = Record<string, unknown> & { upstream?: Record<string, unknown> };

/** A YAML budget's `rate: "600/min"` and `burst: 60` become `perMinute(600)` and `tokens(60)`. */
function yamlBudget(b: unknown): unknown {
  if (typeof b !== "object" || b === null) return b;
  const r = b as Record<string, unknown>;
  const out: Record<string, unknown> = { ...r };
  if (typeof r["rate"] === "string") out["rate"] = parseRate(r["rate"]) ?? r["rate"];
  if (typeof r["burst"] === "number") out["burst"] = tokens(r["burst"]);
  return out;
}

function yamlDuration(v: unknown): unknown {
  return typeof v === "number" || typeof v === "string" ? (parseDuration(v) ?? v) : v;
}

/** A YAML cache's TTLs ("30s", 30000) and miss budget, in the TypeScript form. */
function yamlCache(c: unknown): unknown {
  if (typeof c !== "object" || c === null) return c;
  const r = c as Record<string, unknown>;
  const out: Record<string, unknown> = { ...r };
  const ttl = r["ttl"];
  if (typeof ttl === "object" && ttl !== null) out["ttl"] = Object.fromEntries(Object.entries(ttl).map(([k, v]) => [k, yamlDuration(v)]));
  if (r["notFoundTtl"] !== undefined) out["notFoundTtl"] = yamlDuration(r["notFoundTtl"]);
  if (r["missBudget"] !== undefined) out["missBudget"] = yamlBudget(r["missBudget"]);
  return out;
}

/** YAML durations ("2s", 2000) and rates ("600/min") become the values the TypeScript form uses. */
function yamlToTenant(doc: YamlTenant): YamlTenant {
  const up = doc.upstream;
  const withCache = doc["cache"] === undefined ? doc : { ...doc, cache: yamlCache(doc["cache"]) };
  const withBudgets = Array.isArray(doc["budgets"]) ? { ...withCache, budgets: (doc["budgets"] as unknown[]).map(yamlBudget) } : withCache;
  if (up === undefined) return withBudgets;
  const out: Record<string, unknown> = { ...up };
  for (const k of ["connectTimeout", "readTimeout"]) {
    const v = up[k];
    if (typeof v === "number" || typeof v === "string") out[k] = parseDuration(v);
  }
  return { ...withBudgets, upstream: out };
}

function loadYamlTenants(dir: string, firstIndex: number): { tenants: unknown[]; sources: string[]; inputs: InputFile[]; diagnostics: Diagnostic[] } {
  const tdir = path.join(dir, "tenants");
  const result = { tenants: [] as unknown[], sources: [] as string[], inputs: [] as InputFile[], diagnostics: [] as Diagnostic[] };
  if (!existsSync(tdir)) return result;
  const files = readdirSync(tdir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort();
  for (const f of files) {
    const rel = `tenants/${f}`;
    const text = readFileSync(path.join(tdir, f), "utf8");
    result.inputs.push({ path: rel, sha256: sha256(text) });
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) result.diagnostics.push({ ...diag("FE0004", "", `YAML: ${firstLine(e)}`), source: rel });
      continue;
    }
    const value: unknown = doc.toJS();
    const index = firstIndex + result.tenants.length;
    const schemaDiags = validateTenantYamlSchema(value, ["tenants", index]);
    if (schemaDiags.length > 0) {
      for (const d of schemaDiags) result.diagnostics.push({ ...d, source: rel });
      continue;
    }
    result.tenants.push(yamlToTenant(value as YamlTenant));
    result.sources.push(rel);
  }
  return result;
}

export async function loadPolicy(policyFile: string): Promise<LoadResult> {
  const file = path.resolve(policyFile);
  if (!existsSync(file)) {
    return { raw: undefined, tenantSources: [], inputs: [], diagnostics: [diag("FE0001", "", `policy file ${policyFile} not found`, "--policy FILE")] };
  }
  const dir = path.dirname(file);
  const modules = localModuleGraph(file).sort();
  const inputs: InputFile[] = modules.map((m) => ({ path: path.relative(dir, m).split(path.sep).join("/"), sha256: sha256(readFileSync(m)) }));
  const evaluated = await evaluatePolicy(file);
  const own = evaluated.value as { tenants?: unknown } | undefined;
  const ownTenants = own !== undefined && typeof own === "object" && own !== null && Array.isArray(own.tenants) ? (own.tenants as unknown[]) : [];
  const yaml = loadYamlTenants(dir, ownTenants.length);
  const mergeable = typeof own === "object" && own !== null && (own.tenants === undefined || Array.isArray(own.tenants));
  const raw = mergeable ? { ...own, tenants: [...ownTenants, ...yaml.tenants] } : own;
  return {
    raw,
    tenantSources: [...ownTenants.map(() => undefined), ...yaml.sources],
    inputs: [...inputs, ...yaml.inputs].sort((a, b) => a.path.localeCompare(b.path)),
    diagnostics: [...evaluated.diagnostics, ...yaml.diagnostics],
  };
}
