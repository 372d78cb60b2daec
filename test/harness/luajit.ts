/**
 * Runs compiled lua-plugins modules under plain LuaJIT, many cases per process: one `luajit`
 * start (about 2 ms) per batch rather than per case, so property tests can throw hundreds of
 * inputs at a module cheaply.
 *
 * The plugins are compiled by the same code path as a bundle (compiler/emit/plugins.ts), so
 * the tests run exactly the Lua nginx runs, from a cache keyed by the sources' hash.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { buildPlugins } from "../../compiler/emit/plugins.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");

let compiled: string | undefined;

/** The directory of compiled plugin `.lua` files (compiles once per test process). */
export function luaDir(): string {
  if (compiled !== undefined) return compiled;
  const b = buildPlugins(ROOT);
  if (b.dir === undefined) throw new Error(`lua-plugins do not compile:\n${b.diagnostics.map(formatDiagnostic).join("\n")}`);
  compiled = b.dir;
  return compiled;
}

/** One case's outcome: the function's return values (nil as undefined), or the error it raised. */
export type LuaResult = { readonly ok: true; readonly values: unknown[] } | { readonly ok: false; readonly error: string };

// Arguments travel as JSON; `null` stands for nil, and n keeps trailing nils countable.
const DRIVER = String.raw`
local cjson = require("cjson.safe")
local null = cjson.null
local m = require(MODULE)
local fn = FN
local input = io.read("*a")
local cases = assert(cjson.decode(input))
-- JSON null is nil in Lua, as it is in the policy tables the compiler writes.
local function nilify(v)
  if v == null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = nilify(x) end
  end
  return v
end
local function pack(...) return { n = select("#", ...), ... } end
local out = {}
for i = 1, #cases do
  local c = cases[i]
  local args = {}
  for j = 1, c.n do args[j] = nilify(c.args[j]) end
  local r = pack(pcall(fn, unpack(args, 1, c.n)))
  if r[1] then
    local values = {}
    for j = 2, r.n do
      local v = r[j]
      if v == nil then v = null end
      values[j - 1] = v
    end
    out[i] = { ok = true, values = values, n = r.n - 1 }
  else
    out[i] = { ok = false, error = tostring(r[2]) }
  end
end
io.write(assert(cjson.encode(out)))
`;

const luaString = (s: string): string => JSON.stringify(s);

function denull(v: unknown): unknown {
  if (v === null) return undefined;
  if (Array.isArray(v)) return v.map(denull);
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, denull(x)]));
  return v;
}

/**
 * Calls `fn` for every case in one LuaJIT process.
 * @param module dotted module name as nginx requires it, e.g. "fhir.classify"
 * @param fn an exported function name of the module, or a Lua function expression in which the
 *   module is `m`, e.g. `function(policy, host) return m.resolve(m.buildIndex(policy), nil, host) end`
 * @param cases argument lists; `undefined` is passed as nil
 */
export async function runLua(module: string, fn: string, cases: readonly (readonly unknown[])[]): Promise<LuaResult[]> {
  const dir = luaDir();
  const fnExpr = /^[A-Za-z_][A-Za-z0-9_]*$/.test(fn) ? `m[${luaString(fn)}]` : `(${fn})`;
  const prelude = `package.path = ${luaString(`${dir}/?.lua;${dir}/?/init.lua;`)} .. package.path\n`;
  const script = prelude + DRIVER.replace("MODULE", () => luaString(module)).replace("FN", () => fnExpr);
  const input = JSON.stringify(cases.map((args) => ({ n: args.length, args: args.map((a) => (a === undefined ? null : a)) })));
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("luajit", ["-e", script], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
    child.stdin.end(input);
  });
  if (code !== 0) throw new Error(`luajit failed (exit ${String(code)}) running ${module}.${fn}:\n${stderr}`);
  const parsed = JSON.parse(stdout) as ({ ok: true; values: unknown[] | Record<string, never>; n: number } | { ok: false; error: string })[];
  return parsed.map((r) => {
    if (!r.ok) return { ok: false, error: r.error };
    // cjson writes an empty table as {}; keep positions for trailing nils.
    const vals = Array.isArray(r.values) ? r.values : [];
    return { ok: true, values: Array.from({ length: r.n }, (_, i) => denull(vals[i])) };
  });
}

/** Like runLua, but every case must succeed; returns each case's first return value. */
export async function luaFirst<T>(module: string, fn: string, cases: readonly (readonly unknown[])[]): Promise<T[]> {
  const results = await runLua(module, fn, cases);
  return results.map((r, i) => {
    if (!r.ok) throw new Error(`case ${i} (${JSON.stringify(cases[i])}) raised: ${r.error}`);
    return r.values[0] as T;
  });
}
