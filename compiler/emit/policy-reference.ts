/**
 * docs/policy-reference.md, generated from the DSL's types (policy-dsl/types.ts) with ts-morph:
 * every option under `definePolicy({...})`, by its path, with its type, its TSDoc, its default
 * and its unit. `npm run gen:docs` writes it; a unit test fails when the file is stale, so a
 * changed option or TSDoc cannot ship with an old reference.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Project, type InterfaceDeclaration, type JSDoc, type PropertySignature, type SourceFile } from "ts-morph";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const TYPES_FILE = path.join(ROOT, "policy-dsl", "types.ts");
export const REFERENCE_FILE = path.join(ROOT, "docs", "policy-reference.md");

/** The unit types: how a value is written in a policy, and in YAML. */
const UNITS: Record<string, string> = {
  Duration: "a duration: `seconds(n)` or `milliseconds(n)` (YAML: `500ms`, `2s`, `1m`, or a number of ms)",
  Size: "a size: `kilobytes(n)` or `megabytes(n)`",
  Rate: "a rate: `perSecond(n)`, `perMinute(n)` or `perHour(n)` cost tokens (YAML: `600/m`)",
  Tokens: "a whole number of cost tokens: `tokens(n)`",
};

interface Row {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly defaultText: string | undefined;
  readonly doc: string;
  readonly units: readonly string[];
}

function docOf(docs: readonly JSDoc[]): { text: string; defaultText: string | undefined } {
  const text = docs
    .map((d) => d.getDescription().trim())
    .filter((t) => t !== "")
    .join(" ");
  let defaultText: string | undefined;
  for (const d of docs) for (const tag of d.getTags()) if (tag.getTagName() === "default") defaultText = (tag.getCommentText() ?? "").trim();
  return { text: oneLine(text), defaultText: defaultText === undefined ? undefined : oneLine(defaultText) };
}

/** TSDoc as one Markdown table cell: `{@link X}` as `X`, lines joined, pipes escaped. */
function oneLine(s: string): string {
  return s
    .replace(/\{@link\s+([^}\s]+)(?:\s+[^}]*)?\}/g, "`$1`")
    .replace(/\s*\n\s*/g, " ")
    .replace(/\|/g, "\\|")
    .trim();
}

function typeText(p: PropertySignature): string {
  const t = p.getTypeNode();
  return (t === undefined ? p.getType().getText(p) : t.getText()).replace(/\breadonly\s+/g, "").replace(/\s*\n\s*/g, " ");
}

class Walker {
  readonly rows: Row[] = [];
  private readonly interfaces = new Map<string, InterfaceDeclaration>();
  private readonly aliases = new Map<string, string>();

  constructor(sf: SourceFile) {
    for (const i of sf.getInterfaces()) this.interfaces.set(i.getName(), i);
    for (const a of sf.getTypeAliases()) this.aliases.set(a.getName(), a.getTypeNodeOrThrow().getText());
  }

  /** The interfaces a type text names, through aliases (`AuditSinkProps` is a union of three). */
  private named(type: string): string[] {
    const out: string[] = [];
    for (const [name] of type.matchAll(/\b[A-Z][A-Za-z]+\b/g)) {
      if (this.interfaces.has(name)) out.push(name);
      else if (this.aliases.has(name)) out.push(...this.named(this.aliases.get(name)!));
    }
    return out;
  }

  walk(iface: string, prefix: string, seen: readonly string[]): void {
    const decl = this.interfaces.get(iface);
    if (decl === undefined) throw new Error(`policy-reference: no interface ${iface} in policy-dsl/types.ts`);
    for (const p of decl.getProperties()) {
      const type = typeText(p);
      const own = docOf(p.getJsDocs());
      // An option whose type is one interface may say what it is on the interface instead.
      const targets = this.named(type);
      const text = own.text !== "" || targets.length !== 1 ? own.text : docOf(this.interfaces.get(targets[0]!)!.getJsDocs()).text;
      const defaultText = own.defaultText;
      const array = /\[\]$|^\(.*\)\[\]$|Array</.test(type);
      const record = /^Record</.test(type) || /^Readonly<Record</.test(type);
      const here = `${prefix}${p.getName()}${array ? "[]" : ""}`;
      const units = Object.keys(UNITS).filter((u) => new RegExp(`\\b${u}\\b`).test(type));
      this.rows.push({ path: here, type, required: !p.hasQuestionToken(), defaultText, doc: text, units });
      // A union of interfaces (the sink kinds): each one's options under its own name.
      for (const child of targets) {
        if (UNITS[child] !== undefined || seen.includes(child)) continue;
        this.walk(child, `${here}${record ? ".<key>" : ""}${targets.length > 1 ? ` (${child})` : ""}.`, [...seen, child]);
      }
    }
  }
}

/** The reference text for the DSL types in `typesFile`. */
export function policyReference(typesFile = TYPES_FILE): string {
  const project = new Project({ skipAddingFilesFromTsConfig: true, compilerOptions: { allowImportingTsExtensions: true, noEmit: true, strict: true } });
  const sf = project.addSourceFileAtPath(typesFile);
  project.resolveSourceFileDependencies();
  const w = new Walker(sf);
  w.walk("PolicyInput", "", ["PolicyInput"]);
  const out: string[] = [
    "<!-- GENERATED from policy-dsl/types.ts by `npm run gen:docs` (compiler/emit/policy-reference.ts); do not edit. -->",
    "# Policy reference",
    "",
    "Every option of `definePolicy({...})` in `gateway.policy.ts`, by its path, with its TSDoc. A",
    "tenant in `tenants/*.yaml` has the shape of `tenants[]` (durations and rates as strings there;",
    "`policy-dsl/schema/tenant.schema.json`). Defaults are applied by the compiler; an option",
    "without one is required, or absent means off.",
    "",
    "## Units",
    "",
    ...Object.entries(UNITS).map(([u, d]) => `- \`${u}\`: ${d}.`),
    "",
    "## Options",
    "",
    "| option | type | default | what |",
    "|---|---|---|---|",
  ];
  for (const r of w.rows) {
    const def = r.required ? "required" : r.defaultText === undefined ? "none" : r.defaultText.replace(/\|/g, "\\|");
    const unit = r.units.length === 0 ? "" : ` Unit: ${r.units.map((u) => `\`${u}\``).join(", ")}.`;
    out.push(`| \`${r.path}\` | \`${r.type.replace(/\|/g, "\\|")}\` | ${def} | ${r.doc}${unit} |`);
  }
  return out.join("\n") + "\n";
}
