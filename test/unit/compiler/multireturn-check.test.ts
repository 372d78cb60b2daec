/**
 * FE3102 on in-memory sources: a multiple-return call compared to undefined as one value is
 * found, with its position; the destructured form and plain values are not. The real tree is
 * checked by every plugin build (buildPlugins fails on any finding).
 */
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { multiReturnFindings } from "../../../compiler/emit/multireturn-check.ts";
import { buildPlugins } from "../../../compiler/emit/plugins.ts";
import { REPO } from "./temp-project.ts";

// The brand the language extensions put on LuaMultiReturn<T>, under another alias name and over
// a union of tuples, as lua-types declares string.find: the check must go by the brand.
const PRELUDE = "type MultiValues<T extends any[]> = T & { readonly __tstlMultiReturn: any };\ndeclare function find(s: string, p: string): MultiValues<[number, number] | [undefined]>;\n";

function findings(body: string): { line: number; column: number }[] {
  const file = "/virtual/snippet.ts";
  const text = PRELUDE + body;
  const host = ts.createCompilerHost({ strict: true, noEmit: true, types: [] });
  const { getSourceFile } = host;
  host.getSourceFile = (f, lang, ...rest) => (f === file ? ts.createSourceFile(f, text, lang, true) : getSourceFile.call(host, f, lang, ...rest));
  host.fileExists = ((fe) => (f: string) => f === file || fe.call(host, f))(host.fileExists);
  const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ["lib.es2020.d.ts"] }, host);
  return multiReturnFindings(program).map((f) => ({ line: f.line - 2, column: f.column }));
}

describe("FE3102: a multiple-return call compared as one value", () => {
  it("finds ===, !==, == and != against undefined or null, on either side", () => {
    expect(findings('export const a = find("x", "y") !== undefined;\n')).toEqual([{ line: 1, column: 18 }]);
    expect(findings('export const b = undefined === find("x", "y");\n')).toEqual([{ line: 1, column: 32 }]);
    expect(findings('export function c(): boolean { return find("x", "y") == null; }\n')).toHaveLength(1);
    expect(findings('export function d(s: string): number { if (find(s, "%z") !== undefined) return 1; return 0; }\n')).toHaveLength(1);
  });

  it("leaves the destructured form and ordinary values alone", () => {
    expect(findings('export function e(s: string): boolean { const [i] = find(s, "y"); return i !== undefined; }\n')).toEqual([]);
    expect(findings("export function f(x: number | undefined): boolean { return x !== undefined; }\n")).toEqual([]);
    expect(findings('export const g = find("x", "y")[0] !== undefined;\n')).toEqual([]);
  });

  it("finds nothing in the real lua-plugins tree, whose build would fail otherwise", () => {
    expect(buildPlugins(REPO).diagnostics.filter((d) => d.code === "FE3102")).toEqual([]);
  });
});
