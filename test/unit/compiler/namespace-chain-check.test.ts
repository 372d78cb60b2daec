/**
 * FE3103 on in-memory sources: an optional chain on a namespace import's member is found, with
 * its position; the same chain on a local, a plain member access, and a chain on the namespace
 * itself are not. The real tree is checked by every plugin build (buildPlugins fails on any finding).
 */
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { namespaceChainFindings } from "../../../compiler/emit/namespace-chain-check.ts";

const LIB = "/virtual/policy.ts";
const LIB_TEXT = "export const audit: { key: string; keys: string[]; f(): number } | undefined = undefined;\nexport const name = 'x';\n";

function findings(body: string): { line: number; column: number }[] {
  const file = "/virtual/snippet.ts";
  const text = 'import * as policy from "./policy";\n' + body;
  const files = new Map([
    [file, text],
    [LIB, LIB_TEXT],
  ]);
  const host = ts.createCompilerHost({ strict: true, noEmit: true, types: [] });
  const { getSourceFile } = host;
  host.getSourceFile = (f, lang, ...rest) => (files.has(f) ? ts.createSourceFile(f, files.get(f)!, lang, true) : getSourceFile.call(host, f, lang, ...rest));
  host.fileExists = ((fe) => (f: string) => files.has(f) || fe.call(host, f))(host.fileExists);
  const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ["lib.es2020.d.ts"], moduleResolution: ts.ModuleResolutionKind.Node10 }, host);
  return namespaceChainFindings(program)
    .filter((f) => f.file === file)
    .map((f) => ({ line: f.line - 1, column: f.column }));
}

describe("FE3103: an optional chain on a namespace import's member", () => {
  it("finds ?.x, ?.[k] and ?.() on ns.member", () => {
    expect(findings("export const a = policy.audit?.key;\n")).toEqual([{ line: 1, column: 18 }]);
    expect(findings("export const b = policy.audit?.keys[0];\n")).toHaveLength(1);
    expect(findings('export const c = policy.audit?.["key"];\n')).toHaveLength(1);
    expect(findings("export const d = (): number | undefined => policy.audit?.f();\n")).toHaveLength(1);
  });

  it("leaves a local, a plain access and non-optional chains alone", () => {
    expect(findings("const cfg = policy.audit;\nexport const e = cfg?.key;\n")).toEqual([]);
    expect(findings("export const f = policy.name.length;\n")).toEqual([]);
    expect(findings("export const g = policy.audit === undefined ? undefined : policy.audit.key;\n")).toEqual([]);
  });
});
