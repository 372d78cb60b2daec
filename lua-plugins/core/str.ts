/**
 * Boolean forms of string.find. Comparing `string.find(...)` to undefined directly does not
 * work in TSTL: the multi-return is wrapped in a table, which is never nil. These destructure
 * the first value, and LuaJIT inlines them.
 */
const find = string.find;

/** Lua pattern match anywhere in `s`. */
export function matches(s: string, pattern: string): boolean {
  const [i] = find(s, pattern);
  return i !== undefined;
}

/** Plain substring test (no pattern magic). */
export function contains(s: string, needle: string): boolean {
  const [i] = find(s, needle, 1, true);
  return i !== undefined;
}

/** `v` when it is a non-empty string, else undefined: for optional string fields of decoded JSON. */
export function nonEmpty(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
