/**
 * A strict JSON front for request bodies (issue #16). Pure: runs under plain LuaJIT too.
 *
 * cjson accepts what other parsers do not, and they disagree where JSON leaves room: with a
 * key twice, cjson keeps the last and some upstreams the first, so a body with `subject`
 * twice could pass the gateway's check and mean something else upstream. Refused here:
 * - a duplicate key in any object, `"a"` and `"\u0061"` alike: the members cjson kept are
 *   counted against the `:` outside strings in the raw text;
 * - nesting deeper than MAX_DEPTH (cjson's own limit, set on a private instance);
 * - hex, Infinity and NaN numbers;
 * - a raw control character inside a string (JSON wants them escaped).
 * UTF-8 is checked by the caller (nginx's PCRE), where the body is read.
 */
import * as cjsonSafe from "cjson.safe";

export const MAX_DEPTH = 64;

export type JsonError = "syntax" | "duplicate_key" | "control_character";

const strict = cjsonSafe.new();
strict.decode_max_depth(MAX_DEPTH);
strict.decode_invalid_numbers(false);

const find = string.find;
const byte = string.byte;

/**
 * Colons outside strings (one per object member), or -1 for a raw control character in a
 * string. A byte loop, which LuaJIT compiles: string.find with a capture pattern is not, and
 * it was 17% of a worker's time on the bench's creates.
 */
function rawMembers(s: string): number {
  let colons = 0;
  let inString = false;
  const n = s.length;
  let i = 1;
  while (i <= n) {
    const b = byte(s, i);
    if (inString) {
      if (b === 34) inString = false;
      // A backslash escapes the byte after it (cjson has checked the escape itself).
      else if (b === 92) i += 1;
      else if (b < 32) return -1;
    } else if (b === 34) inString = true;
    else if (b === 58) colons += 1;
    i += 1;
  }
  return colons;
}

/** Members of every object in a decoded value (a non-empty JSON array decodes with [1] set). */
function decodedMembers(v: unknown): number {
  if (type(v) !== "table") return 0;
  let n = 0;
  const isArray = (v as unknown[])[0] !== undefined;
  for (const [, x] of pairs(v as Record<string, unknown>)) {
    if (!isArray) n += 1;
    if (type(x) === "table") n += decodedMembers(x);
  }
  return n;
}

export function decodeStrict(body: string): LuaMultiReturn<[unknown, undefined] | [undefined, JsonError]> {
  // cjson reads a NUL as the end of the text; say what it is.
  const [nul] = find(body, "%z");
  if (nul !== undefined) return $multi(undefined, "control_character");
  const [doc, err] = strict.decode(body);
  if (err !== undefined) return $multi(undefined, "syntax");
  const raw = rawMembers(body);
  if (raw < 0) return $multi(undefined, "control_character");
  if (raw !== decodedMembers(doc)) return $multi(undefined, "duplicate_key");
  return $multi(doc, undefined);
}
