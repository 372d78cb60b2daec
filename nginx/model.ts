/**
 * A typed nginx.conf model and its printer. Arguments are quoted by the printer, so no caller
 * splices strings into the conf; Lua code goes in `lua` nodes, printed as `*_by_lua_block`.
 */
export type ConfNode = Directive | Block | LuaBlock | Comment | Blank | MapEntry;

export interface Directive {
  readonly kind: "directive";
  readonly name: string;
  readonly args: readonly (string | number)[];
}
export interface Block {
  readonly kind: "block";
  readonly name: string;
  readonly args: readonly (string | number)[];
  readonly children: readonly ConfNode[];
}
export interface LuaBlock {
  readonly kind: "lua";
  /** `access_by_lua_block`, `init_by_lua_block`, ... */
  readonly name: `${string}_by_lua_block`;
  readonly code: string;
}
/** A `source value;` line of a `map` block: both sides quoted as arguments (the source may be a regex). */
export interface MapEntry {
  readonly kind: "map-entry";
  readonly source: string;
  readonly value: string;
}
export interface Comment {
  readonly kind: "comment";
  readonly text: string;
}
export interface Blank {
  readonly kind: "blank";
}

export const d = (name: string, ...args: (string | number)[]): Directive => ({ kind: "directive", name, args });
export const block = (name: string, args: readonly (string | number)[], children: readonly ConfNode[]): Block => ({ kind: "block", name, args, children });
export const lua = (name: LuaBlock["name"], code: string): LuaBlock => ({ kind: "lua", name, code });
export const mapEntry = (source: string, value: string): MapEntry => ({ kind: "map-entry", source, value });
export const comment = (text: string): Comment => ({ kind: "comment", text });
export const blank: Blank = { kind: "blank" };

const NAME = /^[a-z_][a-z0-9_]*$/;
const BARE = /^[A-Za-z0-9_./:$@=,*+~^-]+$/;

/**
 * Bare when safe, else double-quoted. `$var` inside double quotes still interpolates, which is
 * what nginx does for `set $x "..."`; a literal needing no variable is never given a `$` by us.
 */
export function quoteArg(a: string | number): string {
  const s = String(a);
  if (s !== "" && BARE.test(s)) return s;
  if (/[\r\n]/.test(s)) throw new Error(`nginx argument cannot contain a line break: ${JSON.stringify(s)}`);
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

const MAP_KEYWORDS = new Set(["default", "hostnames", "include", "volatile"]);

function checkName(name: string): void {
  if (!NAME.test(name)) throw new Error(`bad nginx directive name ${JSON.stringify(name)}`);
}

function printNode(n: ConfNode, indent: string, out: string[]): void {
  switch (n.kind) {
    case "blank":
      out.push("");
      return;
    case "comment":
      for (const line of n.text.split("\n")) out.push(`${indent}# ${line}`.trimEnd());
      return;
    case "directive":
      checkName(n.name);
      out.push(`${indent}${[n.name, ...n.args.map(quoteArg)].join(" ")};`);
      return;
    case "map-entry":
      // `default`, `hostnames`, `include` and `volatile` are keywords in a map: a source that
      // spells one is escaped, as nginx allows, so it stays a value.
      out.push(`${indent}${MAP_KEYWORDS.has(n.source) ? "\\" + n.source : quoteArg(n.source)} ${quoteArg(n.value)};`);
      return;
    case "lua": {
      checkName(n.name);
      // nginx's lexer counts braces inside the block, so unbalanced Lua would end it early.
      if (!braceBalanced(n.code)) throw new Error(`${n.name}: Lua code has unbalanced braces`);
      const lines = n.code.trim().split("\n");
      if (lines.length === 1) out.push(`${indent}${n.name} { ${lines[0] ?? ""} }`);
      else {
        out.push(`${indent}${n.name} {`);
        for (const l of lines) out.push(`${indent}    ${l}`.trimEnd());
        out.push(`${indent}}`);
      }
      return;
    }
    case "block":
      checkName(n.name);
      out.push(`${indent}${[n.name, ...n.args.map(quoteArg)].join(" ")} {`);
      for (const c of n.children) printNode(c, indent + "    ", out);
      out.push(`${indent}}`);
      return;
  }
}

function braceBalanced(code: string): boolean {
  let depth = 0;
  for (const ch of code) {
    if (ch === "{") depth++;
    else if (ch === "}" && --depth < 0) return false;
  }
  return depth === 0;
}

export function printConf(nodes: readonly ConfNode[]): string {
  const out: string[] = [];
  for (const n of nodes) printNode(n, "", out);
  return out.join("\n") + "\n";
}
