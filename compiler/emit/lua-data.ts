/**
 * Prints plain JSON-like data as a Lua table literal. Arrays become sequences; a null inside an
 * array would be a hole that breaks `#` and ipairs, so it is refused. A null object field is left
 * out, which is what reading it in Lua gives anyway (nil).
 */
export type LuaValue = string | number | boolean | null | undefined | readonly LuaValue[] | { readonly [k: string]: LuaValue };

const LUA_KEYWORDS = new Set(
  "and break do else elseif end false for function goto if in local nil not or repeat return then true until while".split(" "),
);

/** A Lua string literal safe for any input: only printable ASCII stays as is. */
export function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, "utf8")) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += "\\\\";
    else if (byte === 0x0a) out += "\\n";
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    // Three digits always, so a following digit is never read as part of the escape.
    else out += "\\" + byte.toString().padStart(3, "0");
  }
  return out + '"';
}

function luaNumber(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`cannot print ${n} as a Lua number`);
  return Number.isInteger(n) ? n.toFixed(0) : String(n);
}

function luaKey(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !LUA_KEYWORDS.has(k) ? k : `[${luaString(k)}]`;
}

export function toLua(v: LuaValue, indent = ""): string {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "string") return luaString(v);
  if (typeof v === "number") return luaNumber(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  const inner = indent + "  ";
  if (Array.isArray(v)) {
    const items = v as readonly LuaValue[];
    if (items.length === 0) return "{}";
    const parts = items.map((x, i) => {
      if (x === null || x === undefined) throw new Error(`array hole at index ${i}: Lua sequences cannot hold nil`);
      return inner + toLua(x, inner);
    });
    return `{\n${parts.join(",\n")},\n${indent}}`;
  }
  const obj = v as { readonly [k: string]: LuaValue };
  const keys = Object.keys(obj).filter((k) => obj[k] !== null && obj[k] !== undefined);
  if (keys.length === 0) return "{}";
  const parts = keys.map((k) => `${inner}${luaKey(k)} = ${toLua(obj[k], inner)}`);
  return `{\n${parts.join(",\n")},\n${indent}}`;
}

/** A whole module file: a header comment, then `return <value>`. */
export function luaModule(value: LuaValue, header: string): string {
  const comment = header
    .split("\n")
    .map((l) => `-- ${l}`)
    .join("\n");
  return `${comment}\nreturn ${toLua(value)}\n`;
}
