/**
 * The canonical query (issue #12): the one reading of a raw query string that the gateway's
 * checks, its cost model, the cache key and the upstream all see, so no parser differential can
 * slip past a check or poison a cache. Pure: no ngx calls, so it runs under plain LuaJIT.
 *
 * - Split on `&`; empty pieces are dropped. Each piece is `name=value` (split at its first `=`)
 *   or a bare `name`.
 * - Each component is decoded (`+` is a space, `%XY` a byte) and written again: unreserved
 *   characters and `: @ / ? ! $ ' ( ) * ,` literally, every other byte as `%XY` in upper case.
 *   So `%7c` and `|` are both `%7C`, `%2F` and `/` both `/`, `+` and `%20` both `%20`.
 * - Parameters are ordered by name, bytewise, stable for repeated names; a value's comma list is
 *   kept as it is (`_sort` order matters).
 * - Refused: `;` anywhere (a separator to some servers), a raw or decoded control character or
 *   NUL, an invalid percent sequence, double encoding (a decoded `%` then two hex digits), invalid UTF-8,
 *   an empty name or one over 128 bytes, more than `maxParams` parameters, a repeated `_count`,
 *   `_format`, `_sort`, `_summary` or `_elements`, and a `_count` that is not digits.
 */
const byte = string.byte;
const char = string.char;
const find = string.find;
const sub = string.sub;
const fmt = string.format;
const concat = table.concat;

export type QueryError = "bad_percent" | "double_encoded" | "control" | "bad_utf8" | "semicolon" | "empty_name" | "long_name" | "too_many" | "repeated" | "bad_count";

type Result = LuaMultiReturn<[string, undefined] | [undefined, QueryError]>;

export const MAX_NAME = 128;

/** Only the parameters a search reads once: a second copy could be read by one side and not the other. */
const SINGLE: Record<string, boolean> = { _count: true, _format: true, _sort: true, _summary: true, _elements: true };

/** Bytes written as themselves; every other byte is percent-encoded. */
const LITERAL = new LuaTable<number, boolean>();
for (const c of ["-", ".", "_", "~", ":", "@", "/", "?", "!", "$", "'", "(", ")", "*", ","]) LITERAL.set(byte(c), true);
for (let b = 48; b <= 57; b++) LITERAL.set(b, true);
for (let b = 65; b <= 90; b++) LITERAL.set(b, true);
for (let b = 97; b <= 122; b++) LITERAL.set(b, true);

/** `%XY` of every byte, built once. */
const ENCODED = new LuaTable<number, string>();
for (let b = 0; b <= 255; b++) ENCODED.set(b, LITERAL.get(b) === true ? char(b) : fmt("%%%02X", b));

/** A query that needs no decoding or re-encoding: literal bytes and the two separators. */
const PLAIN = "^[%w%-%._~:@/%?!%$'%(%)%*,=&]*$";

function hexValue(b: number | undefined): number | undefined {
  if (b === undefined) return undefined;
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 65 && b <= 70) return b - 55;
  if (b >= 97 && b <= 102) return b - 87;
  return undefined;
}

/** Scratch: one component's decoded bytes. */
const bytes: number[] = [];

/** True when bytes[0..n) are valid UTF-8: no overlongs, surrogates, values past U+10FFFF or stray continuations. */
function validUtf8(n: number): boolean {
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i = i + 1;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = b - 0xc0;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
      cp = b - 0xe0;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = b - 0xf0;
    } else {
      return false;
    }
    // The scratch list holds older components past n: the sequence must end within this one.
    if (i + need >= n) return false;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]!;
      if (c < 0x80 || c > 0xbf) return false;
      cp = cp * 64 + (c - 0x80);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i = i + need + 1;
  }
  return true;
}

/** One component decoded and written again; its decoded length, or the error. */
function canonical(s: string): LuaMultiReturn<[string, number] | [undefined, QueryError]> {
  const len = s.length;
  let n = 0;
  let high = false;
  let i = 1;
  while (i <= len) {
    let b = byte(s, i)!;
    if (b === 43) {
      b = 32;
    } else if (b === 37) {
      const h1 = hexValue(byte(s, i + 1));
      const h2 = hexValue(byte(s, i + 2));
      if (h1 === undefined || h2 === undefined) return $multi(undefined, "bad_percent");
      b = h1 * 16 + h2;
      i = i + 2;
    }
    if (b < 32 || b === 127) return $multi(undefined, "control");
    if (b >= 128) high = true;
    bytes[n] = b;
    n = n + 1;
    i = i + 1;
  }
  // Double encoding, on the decoded bytes: a `%` followed by two hex digits, however each of the
  // three was spelled (`%2541`, `%25%34%31`), so that the canonical form reads the same again.
  for (let k = 0; k + 2 < n; k++) {
    if (bytes[k] === 37 && hexValue(bytes[k + 1]) !== undefined && hexValue(bytes[k + 2]) !== undefined) return $multi(undefined, "double_encoded");
  }
  if (high && !validUtf8(n)) return $multi(undefined, "bad_utf8");
  const out: string[] = [];
  for (let k = 0; k < n; k++) out[k] = ENCODED.get(bytes[k]!)!;
  return $multi(concat(out), n);
}

/** Scratch: the parameters of one query, by position. */
const names: string[] = [];
const values: (string | false)[] = [];
const order: number[] = [];

/**
 * The canonical form of `raw` (the query without `?`), or why it is refused. `maxParams` is
 * the policy's limit on parameters.
 */
export function canonicalQuery(raw: string, maxParams: number): Result {
  if (raw === "") return $multi("", undefined);
  // One class scan decides the common case: a plain query has no `;`, no control character
  // and nothing to decode.
  const [plain] = find(raw, PLAIN);
  if (plain === undefined) {
    const [semi] = find(raw, ";", 1, true);
    if (semi !== undefined) return $multi(undefined, "semicolon");
    const [ctl] = find(raw, "[%z\x01-\x1f\x7f]");
    if (ctl !== undefined) return $multi(undefined, "control");
  }
  const len = raw.length;
  let n = 0;
  let pos = 1;
  // Already canonical as sent: plain, in order, no empty piece, no `=` in a value.
  let same = plain !== undefined;
  let special = false;
  let prev = "";
  while (pos <= len) {
    const [amp] = find(raw, "&", pos, true);
    const stop = amp === undefined ? len : amp - 1;
    if (stop < pos) {
      same = false;
    } else {
      const [eq] = find(raw, "=", pos, true);
      const hasValue = eq !== undefined && eq <= stop;
      const rawName = sub(raw, pos, hasValue ? eq - 1 : stop);
      let name = rawName;
      let nameLen = rawName.length;
      let value: string | false = hasValue ? sub(raw, eq + 1, stop) : false;
      if (plain === undefined) {
        const [cn, nl] = canonical(rawName);
        if (cn === undefined) return $multi(undefined, nl as QueryError);
        name = cn;
        nameLen = nl as number;
      }
      // A `=` inside a value is written %3D, in the plain form too.
      if (value !== false && (plain === undefined || find(value, "=", 1, true)[0] !== undefined)) {
        const [cv, verr] = canonical(value);
        if (cv === undefined) return $multi(undefined, verr as QueryError);
        if (cv !== value) same = false;
        value = cv;
      }
      if (nameLen === 0) return $multi(undefined, "empty_name");
      if (nameLen > MAX_NAME) return $multi(undefined, "long_name");
      if (n > 0 && name < prev) same = false;
      if (byte(name) === UNDERSCORE) special = true;
      prev = name;
      names[n] = name;
      values[n] = value;
      n = n + 1;
    }
    pos = stop + 2;
  }
  if (endsWithAmp(raw, len)) same = false;
  if (n > maxParams) return $multi(undefined, "too_many");
  if (special) {
    const bad = checkSingles(n);
    if (bad !== undefined) return $multi(undefined, bad);
  }
  return $multi(same ? raw : sorted(n), undefined);
}

const UNDERSCORE = 95;

/** A trailing `&` is an empty piece the loop above never visits. */
function endsWithAmp(raw: string, len: number): boolean {
  return byte(raw, len) === 38;
}

/** Which single-use names a query has used, by call: no table to clear between queries. */
const seen = new LuaTable<string, number>();
let call = 0;

function checkSingles(n: number): QueryError | undefined {
  call = call + 1;
  for (let i = 0; i < n; i++) {
    const name = names[i]!;
    if (SINGLE[name] !== true) continue;
    if (seen.get(name) === call) return "repeated";
    seen.set(name, call);
    if (name === "_count") {
      const v = values[i]!;
      if (v === false) return "bad_count";
      const [digits] = find(v, "^%d+$");
      if (digits === undefined) return "bad_count";
    }
  }
  return undefined;
}

function sorted(n: number): string {
  // Insertion sort: stable, and a loop LuaJIT compiles (table.sort calls back from C).
  for (let i = 0; i < n; i++) {
    let j = i - 1;
    const name = names[i]!;
    while (j >= 0 && names[order[j]!]! > name) {
      order[j + 1] = order[j]!;
      j = j - 1;
    }
    order[j + 1] = i;
  }
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = order[i]!;
    const v = values[k]!;
    out[i] = v === false ? names[k]! : names[k]! + "=" + v;
  }
  return concat(out, "&");
}
