import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import * as tstl from "typescript-to-lua";
import { afterEach, describe, expect, it } from "vitest";
import type { Diagnostic } from "../../../compiler/diagnostics.ts";
import { ALLOWED_HELPERS, deniedBy, RULES } from "../../../compiler/emit/lualib-policy.ts";
import { buildPlugins, pluginCompileConfig, transpilePlugins } from "../../../compiler/emit/plugins.ts";
import { REPO, tempProject, type TempProject } from "./temp-project.ts";

// Snippets live in memory under lua-plugins/ (rootDir), so they compile with buildPlugins' own
// options and their diagnostics name lua-plugins/<dir>/<file>.ts as the real ones do.
const DIR = "lualib-check";
const OUT = path.join(REPO, "build", "lualib-check-out"); // never written: output stays in memory

interface Compiled {
  readonly diagnostics: readonly Diagnostic[];
  readonly lua: ReadonlyMap<string, string>;
}

function compile(files: Record<string, string>): Compiled {
  const config = pluginCompileConfig(REPO, OUT);
  if ("diagnostics" in config) throw new Error(JSON.stringify(config.diagnostics));
  const sources = new Map(Object.entries(files).map(([name, text]) => [path.join(REPO, "lua-plugins", DIR, name), text]));
  const host = ts.createCompilerHost(config.options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (f, lang, ...rest) => {
    const text = sources.get(f);
    return text === undefined ? getSourceFile.call(host, f, lang, ...rest) : ts.createSourceFile(f, text, lang);
  };
  host.fileExists = (f) => sources.has(f) || fileExists.call(host, f);
  host.readFile = (f) => sources.get(f) ?? readFile.call(host, f);
  const program = ts.createProgram([...sources.keys()], config.options, host);
  const lua = new Map<string, string>();
  const diagnostics = transpilePlugins(program, REPO, (name, text) => lua.set(path.relative(OUT, name).split(path.sep).join("/"), text));
  return { diagnostics, lua };
}

/** `lua-plugins/<DIR>/<file>:<line>:<col>` of the first `needle` in `src`, 1-based like TS errors. */
function at(file: string, src: string, needle: string): string {
  const i = src.indexOf(needle);
  if (i < 0) throw new Error(`${needle} not in ${file}`);
  const before = src.slice(0, i).split("\n");
  return `lua-plugins/${DIR}/${file}:${before.length}:${(before.at(-1) ?? "").length + 1}`;
}

const SPARSE = "compiles to __TS__SparseArrayNew, __TS__SparseArrayPush, __TS__SparseArraySpread:";
const HOIST = "hoist the conditional or optional-call argument";

// Each: a plugin module, the text the diagnostic must point at, and what it must name.
const BAD: Record<string, { readonly src: string; readonly at: string; readonly message: string; readonly hint: string }> = {
  // The pattern measured in access.ts (before 1cbb71c): a conditional call among the arguments.
  "conditional-argument.ts": {
    src: [
      "declare function authorize(this: void, a: number, b: string, c: boolean, d: string | undefined, e: boolean): number | undefined;",
      "declare function searchKey(this: void, m: string): string | undefined;",
      "export function run(this: void, id: number, m: string, batch: boolean, search: boolean): number | undefined {",
      "  const verdict = batch ? undefined : authorize(id, m, m === \"GET\", search || m === \"POST\" ? searchKey(m) : undefined, batch);",
      "  return verdict;",
      "}",
      "",
    ].join("\n"),
    at: "authorize(id",
    message: SPARSE,
    hint: HOIST,
  },
  // The same call spread over lines: the line is the call's, not the statement's.
  "multiline.ts": {
    src: [
      "declare function authorize(this: void, a: number, b: number, c: number, d: string | undefined, e: number): number;",
      "declare function key(this: void): string | undefined;",
      "export function run(this: void, x: number, flag: boolean): number {",
      "  const v =",
      "    x > 1",
      "      ? 0",
      "      : authorize(x, x + 1, x + 2,",
      "          flag ? key() : undefined, x * 2);",
      "  return v;",
      "}",
      "",
    ].join("\n"),
    at: "authorize(x",
    message: SPARSE,
    hint: HOIST,
  },
  "optional-call.ts": {
    src: [
      "declare function f(this: void, a: number, b: number, c: number, d: string | undefined, e: number): void;",
      "declare const o: { k?: (this: void) => string | undefined } | undefined;",
      "export function run(this: void, x: number): void {",
      "  f(x, x + 1, x + 2, o?.k?.(), x);",
      "}",
      "",
    ].join("\n"),
    at: "f(x,",
    message: SPARSE,
    hint: HOIST,
  },
  "spread-not-last.ts": {
    src: [
      "declare function f(this: void, ...a: number[]): void;",
      "export function run(this: void, xs: number[], x: number): void {",
      "  f(...xs, x);",
      "}",
      "",
    ].join("\n"),
    at: "f(...xs",
    message: SPARSE,
    hint: HOIST,
  },
  "array-literal.ts": {
    src: [
      "declare function k(this: void): string | undefined;",
      "export function run(this: void, x: number, flag: boolean): unknown {",
      "  return [x, x + 1, x + 2, flag ? k() : undefined, x];",
      "}",
      "",
    ].join("\n"),
    at: "[x,",
    message: SPARSE,
    hint: HOIST,
  },
  "destructuring.ts": {
    src: [
      "export function run(this: void, xs: number[]): number {",
      "  const [first, ...rest] = xs;",
      "  return (first ?? 0) + rest.length;",
      "}",
      "",
    ].join("\n"),
    at: "const [first",
    message: "compiles to __TS__ArraySlice:",
    hint: "iterate in place",
  },
  "callback.ts": {
    src: ["export function run(this: void, xs: number[]): number {", "  const ys = xs.map((x) => x + 1);", "  return ys.length;", "}", ""].join("\n"),
    at: "xs.map(",
    message: "compiles to __TS__ArrayMap:",
    hint: "write an indexed loop",
  },
};

// The plain forms the plugins use: a spread that is last (unpack), a rest parameter ({...}),
// string.find, an indexed loop, the hoisted argument.
const CLEAN = [
  "declare function authorize(this: void, a: number, b: string, c: boolean, d: string | undefined, e: boolean): number | undefined;",
  "declare function searchKey(this: void, m: string): string | undefined;",
  "declare function f(this: void, ...a: number[]): number;",
  "const find = string.find;",
  "export function sum(this: void, ...xs: number[]): number {",
  "  let n = 0;",
  "  for (let i = 0; i < xs.length; i++) n += xs[i] ?? 0;",
  "  return n;",
  "}",
  "export function run(this: void, id: number, m: string, batch: boolean, search: boolean, xs: number[]): number | undefined {",
  "  const [i] = find(m, \",\", 1, true);",
  "  const memoKey = search || m === \"POST\" ? searchKey(m) : undefined;",
  "  const verdict = batch ? undefined : authorize(id, m, m === \"GET\", memoKey, batch);",
  "  return (verdict ?? 0) + f(id, ...xs) + (i ?? 0);",
  "}",
  "",
].join("\n");

let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

describe("FE3101: lualib helpers in the compiled plugins", () => {
  const compiled = compile({ ...Object.fromEntries(Object.entries(BAD).map(([f, c]) => [f, c.src])), "clean.ts": CLEAN });

  it.each(Object.keys(BAD))("%s: names the TypeScript call that produced the helper, and the rewrite", (file) => {
    const c = BAD[file]!;
    const mine = compiled.diagnostics.filter((d) => d.path.startsWith(`lua-plugins/${DIR}/${file}:`));
    expect(mine.map((d) => [d.code, d.path])).toEqual([["FE3101", at(file, c.src, c.at)]]);
    expect(mine[0]!.message.startsWith(c.message)).toBe(true);
    expect(mine[0]!.hint).toContain(c.hint);
  });

  it("reports the measured access.ts pattern exactly", () => {
    const d = compiled.diagnostics.find((x) => x.path.includes("conditional-argument.ts"));
    expect(d?.path).toBe(`lua-plugins/${DIR}/conditional-argument.ts:4:39`);
    expect(d?.hint?.startsWith("hoist the conditional or optional-call argument (or the spread that is not last) into a local before the call")).toBe(true);
  });

  it("passes the plain forms, whose Lua uses no lualib helper", () => {
    expect(compiled.diagnostics.filter((d) => d.path.includes("clean.ts"))).toEqual([]);
    expect(compiled.diagnostics.filter((d) => d.code !== "FE3101")).toEqual([]);
    const lua = compiled.lua.get(`${DIR}/clean.lua`);
    expect(lua).toContain("unpack(xs)");
    expect(lua).not.toMatch(/__TS__/);
  });

  it("has a rule for every helper of this TSTL, each named once, and allows only what it justifies", () => {
    const named = RULES.flatMap((r) => r.helpers);
    // NumberParseInt and NumberParseFloat are aliases of ParseInt and ParseFloat.
    const all = [...new Set(Object.values(tstl.LuaLibFeature))];
    expect(new Set(named).size).toBe(named.length);
    expect([...named].sort()).toEqual(all.sort());
    for (const f of all) expect(deniedBy(f) === undefined).toBe(ALLOWED_HELPERS.has(f));
    for (const why of ALLOWED_HELPERS.values()) expect(why.length).toBeGreaterThan(20);
  });

  it("keeps a failing build out of the plugin cache", () => {
    project = tempProject();
    const access = path.join(project.repoRoot, "lua-plugins", "phases", "access.ts");
    const src = "export function run(this: void, xs: number[]): number {\n  return xs.filter((x) => x > 1).length;\n}\n";
    writeFileSync(access, src);
    const failed = buildPlugins(project.repoRoot);
    expect(failed.dir).toBeUndefined();
    expect(failed.diagnostics.map((d) => [d.code, d.path])).toEqual([["FE3101", "lua-plugins/phases/access.ts:2:10"]]);
    const cache = path.join(project.repoRoot, "build", "lua-cache");
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);

    writeFileSync(access, "export function run(this: void): void {}\n");
    const fixed = buildPlugins(project.repoRoot);
    expect(fixed.diagnostics).toEqual([]);
    expect(fixed.dir).toBeDefined();
  });

  it("passes the real lua-plugins tree, whose compiled Lua names no helper", { timeout: 120_000 }, () => {
    const b = buildPlugins(REPO);
    expect(b.diagnostics).toEqual([]);
    const dir = b.dir as string;
    const lua: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const full = path.join(d, e.name);
        if (e.isDirectory()) walk(full);
        else if (e.name.endsWith(".lua")) lua.push(full);
      }
    };
    walk(dir);
    expect(lua.length).toBeGreaterThan(10);
    expect(lua.map((f) => path.relative(dir, f))).not.toContain("lualib_bundle.lua");
    for (const f of lua) expect(readFileSync(f, "utf8"), f).not.toMatch(/__TS__/);
  });
});
