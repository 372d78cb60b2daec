/**
 * Issue #14, one source for the IR: the Lua side's declaration (lua-plugins/generated/policy.d.ts)
 * is what compiler/emit/ir-decl.ts makes of compiler/ir.ts, so changing the IR type without
 * `npm run gen:ir` fails here; and the mapping itself (null to undefined, records to LuaTables,
 * read-only fields, the DSL's aliases resolved) is checked on a small IR of its own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DECL_FILE, irDeclaration } from "../../../compiler/emit/ir-decl.ts";

const dir = mkdtempSync(path.join(tmpdir(), "fe-ir-decl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the IR's Lua declaration", () => {
  it("is the one the IR type makes (run `npm run gen:ir` after changing compiler/ir.ts)", () => {
    expect(readFileSync(DECL_FILE, "utf8")).toBe(irDeclaration());
  });

  it("follows a change to the IR type", () => {
    const ir = path.join(dir, "ir.ts");
    writeFileSync(path.join(dir, "dsl.ts"), 'export type Mode = "a" | "b";\nexport type Key = "x" | "y" | "tenant";\n');
    const base = `import type { Mode, Key } from "./dsl.ts";
/** The root. */
export interface PolicyIR {
  ir_version: 1;
  /** A field's doc. */
  name: string;
  mode: Mode;
  per: Exclude<Key, "tenant">[];
  table: Record<string, { loc: string; n: number | null }>;
  classes: Partial<Record<Mode, boolean>> | null;
  kids: KidIR[];
}
export interface KidIR {
  id: string;
}
interface Unreached {
  x: string;
}
`;
    writeFileSync(ir, base);
    const out = irDeclaration(ir);
    expect(out).toContain('export type Mode = "a" | "b";\n');
    expect(out).toContain("  /** A field's doc. */\n  readonly name: string;\n");
    expect(out).toContain('  readonly per: readonly ("x" | "y")[];\n');
    expect(out).toContain("  readonly table: LuaTable<string, { readonly loc: string; readonly n: number | undefined }>;\n");
    expect(out).toContain("  readonly classes: LuaTable<Mode, boolean> | undefined;\n");
    expect(out).toContain("export interface KidIR {\n  readonly id: string;\n}\n");
    expect(out).not.toContain("Unreached");
    expect(out).toContain('export declare const kids: PolicyIR["kids"];\n');
    writeFileSync(ir, base.replace("  id: string;\n}", "  id: string;\n  added: string[] | null;\n}"));
    expect(irDeclaration(ir)).toContain("export interface KidIR {\n  readonly id: string;\n  readonly added: readonly string[] | undefined;\n}\n");
  });
});
