/**
 * The Lua side's declaration of the policy IR (lua-plugins/generated/policy.d.ts), generated
 * from the compiler's IR type (compiler/ir.ts), so the two cannot drift: `npm run gen:ir`
 * writes it, and a unit test fails when the file is not what this makes.
 *
 * The mapping is what emit/policy-lua.ts does to the data: every field is read-only, `null`
 * becomes `undefined` (a null field is absent, nil, in Lua), a `Record` is a `LuaTable`, and a
 * type the IR takes from the DSL is declared here under its own name, resolved.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const IR_FILE = path.join(ROOT, "compiler", "ir.ts");
export const DECL_FILE = path.join(ROOT, "lua-plugins", "generated", "policy.d.ts");

const HEADER = `/**
 * GENERATED from compiler/ir.ts by \`npm run gen:ir\` (compiler/emit/ir-decl.ts); do not edit.
 * Shape of \`lua/generated/policy.lua\`, which the compiler writes for each bundle from the IR:
 * fields read-only, null as undefined (absent in Lua), records as LuaTables.
 * test/unit/compiler/ir-decl.test.ts fails when this file is stale.
 */
`;

const FLAGS = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias;

class Printer {
  private readonly local = new Map<string, ts.InterfaceDeclaration | ts.TypeAliasDeclaration>();
  /** Names reached from PolicyIR: local declarations and the DSL's aliases. */
  private readonly reached = new Set<string>();
  private readonly imported = new Map<string, string>();

  constructor(
    private readonly sf: ts.SourceFile,
    private readonly checker: ts.TypeChecker,
  ) {
    for (const s of sf.statements) if ((ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && exported(s)) this.local.set(s.name.text, s);
  }

  private reach(name: string): void {
    if (this.reached.has(name)) return;
    this.reached.add(name);
    const decl = this.local.get(name);
    if (decl !== undefined) this.body(decl);
  }

  private body(decl: ts.InterfaceDeclaration | ts.TypeAliasDeclaration): string {
    return ts.isInterfaceDeclaration(decl) ? this.members(decl.members, "  ") : this.type(decl.type);
  }

  private members(members: ts.NodeArray<ts.TypeElement>, indent: string): string {
    const lines: string[] = [];
    for (const m of members) lines.push(`${this.doc(m, indent)}${indent}${this.property(m)};`);
    return lines.join("\n");
  }

  /** `readonly name?: type` of an interface's or an object literal's member. */
  private property(m: ts.TypeElement): string {
    if (!ts.isPropertySignature(m) || m.type === undefined) throw new Error(`ir-decl: ${m.getText(this.sf)}: only properties are supported in the IR`);
    return `readonly ${m.name.getText(this.sf)}${m.questionToken === undefined ? "" : "?"}: ${this.type(m.type)}`;
  }

  private doc(n: ts.Node, indent: string): string {
    const ranges = ts.getLeadingCommentRanges(this.sf.text, n.getFullStart()) ?? [];
    const docs = ranges.filter((r) => this.sf.text.startsWith("/**", r.pos));
    return docs.map((r) => this.sf.text.slice(r.pos, r.end).split("\n").map((l, i) => (i === 0 ? indent + l : indent + l.trimStart().replace(/^\*/, " *"))).join("\n") + "\n").join("");
  }

  type(t: ts.TypeNode): string {
    if (ts.isUnionTypeNode(t)) return t.types.map((x) => this.type(x)).join(" | ");
    if (ts.isArrayTypeNode(t)) {
      const el = this.type(t.elementType);
      // A union, written or resolved (`Exclude<...>`), needs parentheses; an object literal does not.
      const union = ts.isUnionTypeNode(t.elementType) || (el.includes(" | ") && !el.startsWith("{"));
      return `readonly ${union ? `(${el})` : el}[]`;
    }
    if (ts.isParenthesizedTypeNode(t)) return `(${this.type(t.type)})`;
    if (ts.isLiteralTypeNode(t)) return t.literal.kind === ts.SyntaxKind.NullKeyword ? "undefined" : t.getText(this.sf);
    if (ts.isTypeLiteralNode(t)) return `{ ${t.members.map((m) => this.property(m)).join("; ")} }`;
    if (ts.isTypeReferenceNode(t)) {
      const name = t.typeName.getText(this.sf);
      const args = t.typeArguments ?? [];
      if (name === "Record" && args.length === 2) return `LuaTable<${this.type(args[0]!)}, ${this.type(args[1]!)}>`;
      if ((name === "Partial" || name === "Readonly") && args.length === 1) return this.type(args[0]!);
      if (args.length > 0) return this.resolved(t);
      if (this.local.has(name)) {
        this.reach(name);
        return name;
      }
      this.imported.set(name, this.resolved(t));
      this.reached.add(name);
      return name;
    }
    if (t.kind === ts.SyntaxKind.StringKeyword || t.kind === ts.SyntaxKind.NumberKeyword || t.kind === ts.SyntaxKind.BooleanKeyword) return t.getText(this.sf);
    throw new Error(`ir-decl: ${t.getText(this.sf)}: a type form the IR declaration does not map`);
  }

  /** A DSL alias or a utility type, as the checker resolves it (a union of literals). */
  private resolved(t: ts.TypeNode): string {
    return this.checker.typeToString(this.checker.getTypeFromTypeNode(t), undefined, FLAGS);
  }

  print(): string {
    const root = this.local.get("PolicyIR");
    if (root === undefined || !ts.isInterfaceDeclaration(root)) throw new Error("ir-decl: compiler/ir.ts has no PolicyIR interface");
    this.reach("PolicyIR");
    const out: string[] = [HEADER];
    for (const [name, text] of [...this.imported].sort(([a], [b]) => a.localeCompare(b))) out.push(`export type ${name} = ${text};\n`);
    for (const [name, decl] of this.local) {
      if (!this.reached.has(name)) continue;
      const doc = this.doc(decl, "");
      out.push(ts.isInterfaceDeclaration(decl) ? `\n${doc}export interface ${name} {\n${this.body(decl)}\n}\n` : `\n${doc}export type ${name} = ${this.body(decl)};\n`);
    }
    out.push("\n/* The module returns the PolicyIR table itself, so its fields are the module's exports. */\n");
    for (const m of root.members) if (ts.isPropertySignature(m)) out.push(`export declare const ${m.name.getText(this.sf)}: PolicyIR["${m.name.getText(this.sf)}"];\n`);
    return out.join("");
  }
}

function exported(s: ts.Statement): boolean {
  return ts.canHaveModifiers(s) && (ts.getModifiers(s) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

/** The declaration text for the IR type in `irFile`. */
export function irDeclaration(irFile = IR_FILE): string {
  const options: ts.CompilerOptions = { strict: true, noEmit: true, allowImportingTsExtensions: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [] };
  const program = ts.createProgram([irFile], options);
  const sf = program.getSourceFile(irFile);
  if (sf === undefined) throw new Error(`ir-decl: cannot read ${irFile}`);
  return new Printer(sf, program.getTypeChecker()).print();
}
