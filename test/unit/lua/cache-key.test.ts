/**
 * cache/key under LuaJIT (the compiled module, with its FFI SHA-256 bound through
 * ffi.load("crypto")), composed with http/query's canonical form as the cache step composes them:
 * the key of a search is `cacheKey(version, tenant, partition, gen, "GET", path + "?" + canonical, repr)`.
 *
 * Properties (at least 10,000 cases each, batched into few LuaJIT runs), against oracles written
 * here from the doc comments: the key is the SHA-256 of the documented material; spellings of one
 * reading share a key; any other reading, or any other part, gets another; the length prefixes
 * leave no way to move bytes between the partition and the URI; and `formatOf`,
 * `representation` and `readsOtherTypes` say what their comments say. Byte strings are JS
 * strings with one char per byte, sent to Lua hex-encoded (JSON would re-encode bytes >= 0x80).
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runLua, type LuaResult } from "../../harness/luajit.ts";

const N = 10_000;
const MAX = 100;
const BATCH = 10_000;

const VERSION = "0d813b11c11c0e025d1b8036a5495b846a6f423735acab6ded4c9c065895f131";
const TENANT = "acme";
const PARTITION = "a";
const GEN = "0";
const PATH = "/Observation";

type Repr = "json" | "xml";

// ---- Oracles ----

/** The documented material: policy-controlled parts as they are, client-controlled ones length-prefixed (bytes). */
function material(version: string, tenant: string, partition: string, gen: string, method: string, uri: string, repr: string): string {
  return `${version}\n${tenant}\n${partition.length}:${partition}\n${gen}\n${method}\n${uri.length}:${uri}\n${repr}`;
}
const sha256Hex = (bytes: string): string => createHash("sha256").update(Buffer.from(bytes, "latin1")).digest("hex");
const keyOracle = (version: string, tenant: string, partition: string, gen: string, method: string, uri: string, repr: string): string =>
  sha256Hex(material(version, tenant, partition, gen, method, uri, repr));

/** Written literally in a canonical component: unreserved, and `: @ / ? ! $ ' ( ) * ,` (http/query's doc). */
const LITERAL = /^[A-Za-z0-9\-._~:@/?!$'()*,]$/;
const canonEncode = (bytes: string): string =>
  Array.from(bytes, (c) => (LITERAL.test(c) ? c : "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"))).join("");

/** kindOf's doc: JSON or XML when the value names exactly one of them, in any case. */
function kindOracle(v: string): Repr | undefined {
  const s = v.toLowerCase();
  const json = s.includes("json");
  const xml = s.includes("xml");
  return json && !xml ? "json" : xml && !json ? "xml" : undefined;
}

/** representation's doc: `_format` when the query has it, else Accept; none, "" or `*` `/` `*` is JSON. */
function reprOracle(format: string | undefined, accept: string | undefined): Repr | undefined {
  if (format !== undefined) return kindOracle(format);
  if (accept === undefined || accept === "" || accept === "*/*") return "json";
  return kindOracle(accept);
}

interface Param {
  /** Decoded bytes. */
  readonly name: string;
  /** Decoded bytes, or undefined for a bare name. */
  readonly value: string | undefined;
}

/** formatOf's doc, on the decoded parameters: the canonical spelling of `_format`'s value, if it has one. */
function formatOracle(ps: readonly Param[]): string | undefined {
  const f = ps.find((p) => p.name === "_format");
  return f?.value === undefined ? undefined : canonEncode(f.value);
}

/** readsOtherTypes's doc, on the decoded names: `_include`, `_revinclude`, `_has` (with any modifier) or a `.` (a chain). */
function othersOracle(ps: readonly Param[]): boolean {
  return ps.some((p) => {
    const base = p.name.split(":")[0] ?? "";
    return base === "_include" || base === "_revinclude" || base === "_has" || p.name.includes(".");
  });
}

/** The canonical query of decoded parameters (http/query's doc): each component re-encoded, names ordered bytewise, stable. */
function canonOracle(ps: readonly Param[]): string {
  return ps
    .map((p, i) => ({ n: canonEncode(p.name), v: p.value === undefined ? undefined : canonEncode(p.value), i }))
    .sort((a, b) => (a.n < b.n ? -1 : a.n > b.n ? 1 : a.i - b.i))
    .map((p) => (p.v === undefined ? p.n : `${p.n}=${p.v}`))
    .join("&");
}

// ---- The Lua side ----

const toHex = (s: string): string => Buffer.from(s, "latin1").toString("hex");

/**
 * One driver for every operation, so a batch is one LuaJIT process. `m` is cache.key; the
 * canonical query comes from the compiled http.query. Byte strings travel hex-encoded both ways.
 */
const DRIVER = String.raw`(function()
  local q = require("http.query")
  -- Tables, not callbacks, for gsub: a callback per byte cost most of a batch's time.
  local FROM, TO = {}, {}
  for b = 0, 255 do
    local x = string.format("%02x", b)
    FROM[x] = string.char(b)
    FROM[x:upper()] = string.char(b)
    TO[string.char(b)] = x
  end
  local function unhex(h) if h == nil then return nil end return (h:gsub("%x%x", FROM)) end
  local function hex(s) if s == nil then return nil end return (s:gsub(".", TO)) end
  return function(op, a, b, c, d, e, f, g)
    if op == "key" then
      return hex(m.cacheKey(unhex(a), unhex(b), unhex(c), unhex(d), unhex(e), unhex(f), g))
    elseif op == "search" then
      -- a: raw query; the key of its canonical form, and of the canonical form canonicalized again.
      local c1, err = q.canonicalQuery(unhex(a), ${MAX})
      if c1 == nil then return nil, err end
      local c2, err2 = q.canonicalQuery(c1, ${MAX})
      if c2 == nil then return c1, "second:" .. err2 end
      local k1 = hex(m.cacheKey("${VERSION}", "${TENANT}", "${PARTITION}", "${GEN}", "GET", "${PATH}?" .. c1, "json"))
      local k2 = hex(m.cacheKey("${VERSION}", "${TENANT}", "${PARTITION}", "${GEN}", "GET", "${PATH}?" .. c2, "json"))
      return c1, nil, c2, k1, k2
    elseif op == "parts" then
      -- a: raw query; what the cache step reads from its canonical form.
      local c1, err = q.canonicalQuery(unhex(a), ${MAX})
      if c1 == nil then return nil, err end
      local fmt = m.formatOf(c1)
      return c1, nil, hex(fmt), m.readsOtherTypes(c1), m.representation(fmt, unhex(b))
    elseif op == "repr" then
      return m.representation(unhex(a), unhex(b))
    elseif op == "format" then
      return hex(m.formatOf(unhex(a)))
    elseif op == "others" then
      return m.readsOtherTypes(unhex(a))
    end
    error("unknown op " .. tostring(op))
  end
end)()`;

/** Cases in batches of BATCH, one LuaJIT process each, two at a time (these machines have 2 vCPUs). */
async function lua(cases: readonly (readonly unknown[])[]): Promise<unknown[][]> {
  const batches: (readonly (readonly unknown[])[])[] = [];
  for (let at = 0; at < cases.length; at += BATCH) batches.push(cases.slice(at, at + BATCH));
  const results: LuaResult[][] = [];
  for (let b = 0; b < batches.length; b += 2) results.push(...(await Promise.all(batches.slice(b, b + 2).map((batch) => runLua("cache.key", DRIVER, batch)))));
  return results.flat().map((r, i) => {
    if (!r.ok) throw new Error(`${JSON.stringify(cases[i])} raised: ${r.error}`);
    return r.values;
  });
}

const fromHex = (h: unknown): string | undefined => (typeof h === "string" ? Buffer.from(h, "hex").toString("latin1") : undefined);

interface Search {
  readonly canonical: string | undefined;
  readonly error: string | undefined;
  readonly again: string | undefined;
  readonly key: string | undefined;
  readonly keyAgain: string | undefined;
}

async function searches(raws: readonly string[]): Promise<Search[]> {
  const rs = await lua(raws.map((r) => ["search", toHex(r)]));
  return rs.map(([c1, err, c2, k1, k2]) => ({
    canonical: c1 as string | undefined,
    error: err as string | undefined,
    again: c2 as string | undefined,
    key: k1 as string | undefined,
    keyAgain: k2 as string | undefined,
  }));
}

type Tuple = readonly [version: string, tenant: string, partition: string, gen: string, method: string, uri: string, repr: Repr];

async function keys(tuples: readonly Tuple[]): Promise<string[]> {
  const rs = await lua(tuples.map(([v, t, p, g, m, u, r]) => ["key", toHex(v), toHex(t), toHex(p), toHex(g), toHex(m), toHex(u), r]));
  return rs.map((r) => r[0] as string);
}

// ---- Generators ----

const utf8 = (s: string): string => Buffer.from(s, "utf8").toString("latin1");

const SPECIALS = ["_count", "_format", "_sort", "_summary", "_elements"];
const FHIR_NAMES = [
  "code", "status", "subject", "patient", "date", "code:text", "subject:Patient", "value-quantity", "_id", "_lastUpdated", "_total",
  "_include", "_include:iterate", "_revinclude", "_revinclude:iterate", "_has:Observation:patient:code", "_has", "subject.name",
  "subject:Patient.name", "patient.organization.name", "_includes", "has", "include", "_COUNT", "_Format", "a.b", ".", "_format:x",
];

const valueChar = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(..."abcXYZ0129-._~:@/?!$'()*,|+ =&#%\";<>\\^`{}[]") },
  { weight: 2, arbitrary: fc.constantFrom("é", "€", "😀", "中", "\u00a0", "\ufeff", "\u{10ffff}") },
  { weight: 1, arbitrary: fc.constantFrom("json", "xml", "_format=", "&_format=xml", "_include", ".") },
);
/** A decoded value the canonical reading accepts: no control byte, no `%` then two hex digits. */
const decodedValue = fc
  .array(valueChar, { maxLength: 10 })
  .map((cs) => utf8(cs.join("")))
  .filter((v) => !/%[0-9A-Fa-f]{2}/.test(v) && !/[\x00-\x1f\x7f]/.test(v));
const decodedName = fc
  .oneof({ weight: 6, arbitrary: fc.constantFrom(...FHIR_NAMES) }, { weight: 3, arbitrary: decodedValue }, { weight: 1, arbitrary: fc.constant("n".repeat(128)) })
  .filter((n) => n.length > 0 && n.length <= 128 && !/%[0-9A-Fa-f]{2}/.test(n) && !SPECIALS.includes(n));
const FORMATS = ["json", "xml", "JSON", "Xml", "application/fhir+json", "application/fhir+xml", "application/json", "text/xml", "html", "text/html", "", "jsonxml", "ttl", "application/fhir+turtle", "x|json", "json;q=1"];
const specialValue = (name: string): fc.Arbitrary<string | undefined> =>
  name === "_count"
    ? fc.nat(2000).map(String)
    : name === "_format"
      ? fc.oneof(fc.constantFrom(...FORMATS).map(utf8), fc.constant(undefined))
      : fc.oneof(fc.constantFrom("-date,code", "code,-date", "true", "count", "id,code", "a b").map(utf8), fc.constant(undefined));

/** A parameter list the canonical reading accepts: specials at most once, `_count` with digits, at most MAX. */
const paramsArb: fc.Arbitrary<Param[]> = fc
  .tuple(
    fc.array(fc.record({ name: decodedName, value: fc.option(decodedValue, { nil: undefined, freq: 5 }) }), { maxLength: 8 }),
    fc.subarray(SPECIALS).chain((names) => fc.tuple(...names.map((n) => specialValue(n).map((v): Param => ({ name: n, value: v }))))),
    fc.array(fc.nat(), { minLength: 16, maxLength: 16 }),
  )
  .map(([plain, specials, order]) => [...plain, ...specials].map((p, i) => ({ p, k: order[i % 16] ?? i })).sort((a, b) => a.k - b.k).map((x) => x.p));

const hex2 = (b: number): string => "%" + b.toString(16).toUpperCase().padStart(2, "0");
/** A byte that may be sent as itself (`=` only in a value; never `% + & ; #` or a control). */
const rawOk = (c: string, inName: boolean): boolean => {
  const b = c.charCodeAt(0);
  return b > 0x20 && b !== 0x7f && !"%+&;#".includes(c) && !(inName && c === "=");
};

/** A small seeded PRNG (mulberry32): one drawn integer spells a whole query, which keeps sampling fast. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

/**
 * One spelling of a decoded component: each byte literally, as `%XY` or `%xy`, a space as `+`
 * or `%20`. Every spelling decodes to the same bytes, so every one must give the same key.
 */
function spell(s: string, inName: boolean, r: (n: number) => number): string {
  return Array.from(s, (c) => {
    const h = r(6);
    if (c === " " && h < 3) return "+";
    if (rawOk(c, inName) && h < 3) return c;
    const x = hex2(c.charCodeAt(0));
    return h === 5 ? x.toLowerCase() : x;
  }).join("");
}

/** A raw query of these parameters in this order, with empty pieces (`&&`, a trailing `&`) here and there. */
const spellAll = (ps: readonly Param[]): fc.Arbitrary<string> =>
  fc.integer().map((seed) => {
    const r = rng(seed);
    const gap = (): string => (r(6) === 0 ? "&" : "");
    return ps.map((p) => gap() + spell(p.name, true, r) + (p.value === undefined ? "" : "=" + spell(p.value, false, r))).join("&") + gap();
  });

/** The same parameters in another order, keeping the relative order of those with one name. */
const shuffle = (ps: readonly Param[]): fc.Arbitrary<Param[]> =>
  fc.integer().map((seed) => {
    const r = rng(seed);
    const slots = ps.map((p, i) => ({ name: p.name, k: r(1 << 30), i })).sort((a, b) => a.k - b.k || a.i - b.i);
    const byName = new Map<string, Param[]>();
    for (const p of ps) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
    return slots.map((x) => (byName.get(x.name) as Param[]).shift() as Param);
  });

/** Hostile pieces: refused ones, and accepted ones that look like separators or specials. */
const HOSTILE = [
  "a;b=1", "%00=1", "a=%0d%0a", "a=%2541", "a=%252F", "a=%2526", "a=%C0%AF", "a=%ED%A0%80", "a=\xff", "a=%G1", "=1", "a".repeat(129) + "=1",
  "_count=1&_count=2", "_format=json&%5Fformat=xml", "_count=x", "a=%26b%3Dc", "a=%3B", "a=%23", "a=#b", "a=?b", "%5Finclude=x", "subject%2Ename=x",
  "_has%3AObservation%3Apatient%3Acode=1", "a=b=c", "&&&", "a", "a=", "%2e=1", "_format", "_format=", "%5F%66ormat=xml",
];
const rawQueryArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: paramsArb.chain(spellAll) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(paramsArb.chain(spellAll), fc.array(fc.constantFrom(...HOSTILE), { minLength: 1, maxLength: 2 }), fc.nat(4))
      .map(([q, hs, at]) => {
        const pieces = q === "" ? [] : q.split("&");
        hs.forEach((h) => pieces.splice(Math.min(at, pieces.length), 0, h));
        return pieces.join("&");
      }),
  },
);

// ---- Tests ----

const seed = Date.now();

/**
 * A property's failures, collected: one expect per property rather than several per case
 * (vitest's expect costs more than the Lua per case), showing the first few with the seed.
 */
class Failures {
  private readonly list: string[] = [];
  check(ok: boolean, why: () => string): void {
    if (!ok) this.list.push(`seed ${seed}: ${why()}`);
  }
  assert(): void {
    expect(this.list.slice(0, 5), `${this.list.length} failing cases`).toEqual([]);
  }
}

const show = (x: unknown): string => JSON.stringify(x);

describe("cache.key with http.query's canonical form, under LuaJIT", () => {
  it("loads under plain LuaJIT (the FFI SHA-256 binds libcrypto by name) and hashes the documented material", async () => {
    const t: Tuple = [VERSION, TENANT, PARTITION, GEN, "GET", "/Observation?code=x", "json"];
    const [k] = await keys([t]);
    expect(k).toBe(keyOracle(...t));
    expect(k).toMatch(/^[0-9a-f]{64}$/);
  });

  it(`keeps a canonical query and its key when canonicalized again (${N} valid queries and ${N} mixed ones)`, async () => {
    const valid = fc.sample(paramsArb.chain(spellAll), { numRuns: N, seed });
    const mixed = fc.sample(rawQueryArb, { numRuns: N, seed: seed + 1 });
    const got = await searches([...valid, ...mixed]);
    const f = new Failures();
    let accepted = 0;
    got.forEach((s, i) => {
      const why = (): string => `${show(i < N ? valid[i] : mixed[i - N])} -> ${show(s)}`;
      if (i < N) f.check(s.canonical !== undefined, why);
      if (s.canonical === undefined) return;
      accepted++;
      f.check(s.error === undefined && s.again === s.canonical && s.keyAgain === s.key, why);
      f.check(s.key === keyOracle(VERSION, TENANT, PARTITION, GEN, "GET", `${PATH}?${s.canonical}`, "json"), () => `${why()}: not the SHA-256 of the documented material`);
    });
    f.assert();
    expect(accepted).toBeGreaterThanOrEqual(N);
  });

  it(`gives one key to every order of distinct names and every spelling of the same bytes (${N} pairs)`, async () => {
    const pairs = fc.sample(
      paramsArb.chain((ps) => fc.tuple(fc.constant(ps), spellAll(ps), shuffle(ps).chain(spellAll))),
      { numRuns: N, seed: seed + 2 },
    );
    const got = await searches(pairs.flatMap(([, a, b]) => [a, b]));
    const f = new Failures();
    pairs.forEach(([ps, a, b], i) => {
      const x = got[2 * i] as Search;
      const y = got[2 * i + 1] as Search;
      const why = (): string => `${show(a)} -> ${show(x)} vs ${show(b)} -> ${show(y)}`;
      f.check(x.canonical === canonOracle(ps), () => `${why()}: oracle ${show(canonOracle(ps))}`);
      f.check(x.key !== undefined && y.canonical === x.canonical && y.key === x.key, why);
    });
    f.assert();
  });

  it("gives one key to the spellings the cache must merge, and others to the readings it must not", async () => {
    // Each group: raw queries that must share one key; no two groups may share one.
    const groups: readonly (readonly string[])[] = [
      ["code=a|b&status=final", "status=final&code=a%7Cb", "status=final&code=a%7cb", "&status=final&&code=a%7C%62&"],
      ["code=%41", "code=A", "%63ode=A", "c%6F%64%65=%41"],
      ["code=a"],
      ["code=a%2fb", "code=a%2Fb", "code=a/b"],
      ["code=a+b", "code=a%20b", "code=%61+%62"],
      ["code=a%2Bb", "code=a%2bb"],
      ["code=x&code=y", "&code=x&&code=y", "code=%78&code=%79"],
      ["code=y&code=x"],
      ["code=a%26status%3Dfinal", "code=a%26status=final"],
      ["code=a&status=final", "status=final&code=a"],
      ["code=a%23b", "code=a#b"],
      ["code", "&code&"],
      ["code="],
      ["_sort=-date,code", "_sort=-date%2Ccode", "%5Fsort=-date,code"],
      ["_sort=code,-date"],
      ["code=%C3%A9", `code=${utf8("é")}`, "code=%c3%a9"],
      ["code=e%CC%81"],
      ["subject=Patient/1", "subject=Patient%2F1"],
      ["subject=Patient%EF%BC%8F1"],
      ["_COUNT=5"],
      ["_count=5", "%5Fcount=5", "_count=%35"],
      ["_format=xml", "%5Fformat=xml", "_format=%78ml"],
      ["_format=XML"],
      ["", "&", "&&"],
    ];
    const got = await searches(groups.flat());
    let at = 0;
    const groupOf = new Map<string, number>();
    groups.forEach((g, gi) => {
      const ks = got.slice(at, at + g.length);
      at += g.length;
      ks.forEach((s, j) => expect(s.key, `${show(g[j])} -> ${show(s)}`).toBeDefined());
      expect(new Set(ks.map((s) => s.key)).size, `one key for ${show(g)}: ${show(ks.map((s) => s.canonical))}`).toBe(1);
      const k = ks[0]?.key as string;
      expect(groupOf.get(k), `${show(g)} shares a key with ${show(groups[groupOf.get(k) ?? 0])}`).toBeUndefined();
      groupOf.set(k, gi);
    });
  });

  it(`gives another key when any decoded value or name changes (${N} pairs)`, async () => {
    const changed = paramsArb
      .filter((ps) => ps.length > 0)
      .chain((ps) =>
        fc.tuple(fc.constant(ps), fc.nat(ps.length - 1), fc.boolean(), decodedValue, decodedName, fc.nat(999)).map(([ps, i, onName, v, n, k]) => {
          const p = ps[i] as Param;
          let q: Param;
          if (p.name === "_count") q = { name: p.name, value: String(Number(p.value) + 1 + k) };
          else if (onName && !SPECIALS.includes(p.name)) q = { name: n !== p.name ? n : n.length < 128 ? n + "x" : "x", value: p.value };
          else q = { name: p.name, value: p.value === v ? v + "x" : v };
          return [ps, ps.map((x, j) => (j === i ? q : x))] as const;
        }),
      )
      // A renamed parameter may land among others of its new name, where order then matters:
      // the oracle's canonical forms say whether the two lists are two readings.
      .filter(([a, b]) => canonOracle(a) !== canonOracle(b))
      .chain(([a, b]) => fc.tuple(spellAll(a), spellAll(b)));
    const pairs = fc.sample(changed, { numRuns: N, seed: seed + 3 });
    const got = await searches(pairs.flat());
    const f = new Failures();
    pairs.forEach(([a, b], i) => {
      const x = got[2 * i] as Search;
      const y = got[2 * i + 1] as Search;
      f.check(x.key !== undefined && y.key !== undefined && x.key !== y.key, () => `${show(a)} -> ${show(x)} vs ${show(b)} -> ${show(y)}`);
    });
    f.assert();
  });

  // Parts from their alphabets: the version is a sha256, tenant ids are [a-z][a-z0-9-]*,
  // generations are numbers joined by ".", the method and representation are fixed words.
  const versionArb = fc.stringMatching(/^[0-9a-f]{1,64}$/);
  const tenantArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/);
  const genArb = fc.oneof(fc.nat(99).map(String), fc.tuple(fc.nat(99), fc.nat(99)).map(([a, b]) => `${a}.${b}`));
  const methodArb = fc.constantFrom("GET", "HEAD");
  const reprArb = fc.constantFrom<Repr>("json", "xml");
  /** Client-controlled bytes (partition, URI), heavy in the material's own separators and words. */
  const bytesArb = fc
    .array(fc.oneof(fc.constantFrom("\n", ":", "1", "0", "a", "b", "?", "&", "=", "json", "GET"), fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b))), { maxLength: 12 })
    .map((cs) => cs.join(""));
  const tupleArb: fc.Arbitrary<Tuple> = fc.tuple(versionArb, tenantArb, bytesArb, genArb, methodArb, bytesArb, reprArb);

  it(`gives another key when any one part changes: version, tenant, partition, generation, method, URI or representation (${N} pairs)`, async () => {
    const mutated = tupleArb.chain((t) =>
      fc
        .oneof(
          versionArb.map((v): Tuple => [v, t[1], t[2], t[3], t[4], t[5], t[6]]),
          tenantArb.map((v): Tuple => [t[0], v, t[2], t[3], t[4], t[5], t[6]]),
          bytesArb.map((v): Tuple => [t[0], t[1], v, t[3], t[4], t[5], t[6]]),
          genArb.map((v): Tuple => [t[0], t[1], t[2], v, t[4], t[5], t[6]]),
          methodArb.map((v): Tuple => [t[0], t[1], t[2], t[3], v, t[5], t[6]]),
          bytesArb.map((v): Tuple => [t[0], t[1], t[2], t[3], t[4], v, t[6]]),
          reprArb.map((v): Tuple => [t[0], t[1], t[2], t[3], t[4], t[5], v]),
        )
        .filter((u) => u.some((x, i) => x !== t[i]))
        .map((u) => [t, u] as const),
    );
    const pairs = fc.sample(mutated, { numRuns: N, seed: seed + 4 });
    const got = await keys(pairs.flat());
    const f = new Failures();
    pairs.forEach(([t, u], i) => {
      const why = (): string => `${show(t)} vs ${show(u)}`;
      f.check(got[2 * i] === keyOracle(...t) && got[2 * i + 1] === keyOracle(...u), () => `${why()}: not the SHA-256 of the documented material`);
      f.check(got[2 * i + 1] !== got[2 * i], why);
    });
    f.assert();
  });

  it(`never gives two parts lists one key, however bytes move between the partition and the URI (${2 * N} pairs)`, async () => {
    // Without the length prefixes each pair below would have the same bytes in the client's
    // parts: the same partition + URI, or the same "<partition>\n<gen>\n<method>\n<uri>".
    // (1) The same bytes split at two places between partition and URI.
    const shifts = fc.tuple(bytesArb, bytesArb, genArb, methodArb, fc.nat(), fc.nat()).map(([a, b, gen, method, i, j]): [Tuple, Tuple] => {
      const joined = `${a}\n${gen}\n${method}\n${b}`;
      const x = i % (joined.length + 1);
      let y = j % (joined.length + 1);
      if (y === x) y = (x + 1) % (joined.length + 1);
      return [
        [VERSION, TENANT, joined.slice(0, x), gen, method, joined.slice(x), "json"],
        [VERSION, TENANT, joined.slice(0, y), gen, method, joined.slice(y), "json"],
      ];
    });
    // (2) A partition or URI that spells a generation and a method of its own, so that the
    // two lists differ in those parts too.
    const forged = fc.tuple(bytesArb, bytesArb, bytesArb, genArb, genArb, methodArb, methodArb).map(([a, b, c, g1, g2, m1, m2]): [Tuple, Tuple] => [
      [VERSION, TENANT, a, g1, m1, `${b}\n${g2}\n${m2}\n${c}`, "json"],
      [VERSION, TENANT, `${a}\n${g1}\n${m1}\n${b}`, g2, m2, c, "json"],
    ]);
    const pairs = [...fc.sample(shifts, { numRuns: N, seed: seed + 5 }), ...fc.sample(forged, { numRuns: N, seed: seed + 6 })];
    const got = await keys(pairs.flat());
    const f = new Failures();
    pairs.forEach(([t, u], i) => {
      const why = (): string => `${show(t)} vs ${show(u)}`;
      if (i < N) f.check(u[2] + u[5] === t[2] + t[5], () => `${why()}: the generator moved no bytes`);
      else f.check(u.join("\n") === t.join("\n"), () => `${why()}: the generator forged nothing`);
      f.check(got[2 * i] === keyOracle(...t), () => `${why()}: not the SHA-256 of the documented material`);
      f.check(got[2 * i + 1] !== got[2 * i], why);
    });
    f.assert();
  });

  it("refuses the hand-made forgeries of one material from another", async () => {
    const base = (partition: string, uri: string, gen = GEN, method = "GET"): Tuple => [VERSION, TENANT, partition, gen, method, uri, "json"];
    const pairs: readonly (readonly [Tuple, Tuple])[] = [
      [base("ab", "c"), base("a", "bc")],
      [base("", "/Observation?x"), base("/Observation?x", "")],
      // A partition that spells the rest of another material, prefixes and all.
      [base("a", "/O"), base("a\n0\nGET\n2:/O", "")],
      [base("1:a", "b"), base("1", "1:ab")],
      [base("a\n1", "/O"), base("a", "/O", "1")],
      [base("a", "/O\njson"), base("a", "/O")],
      [base("u3:bob", "/O"), base("u3:bo", "b/O")],
      [base("p1", "/O"), base("p", "1/O")],
      [base("pX", "/O", "0"), base("pX", "/O", "0.0")],
      [base("a", "/O", "1.2"), base("a", "/O", "12")],
      [base("a", "/O", "0", "GET"), base("a", "/O", "0", "HEAD")],
      [[VERSION, "ab", "c", GEN, "GET", "/O", "json"], [VERSION, "a", "bc", GEN, "GET", "/O", "json"]],
      [[VERSION, TENANT, "a", GEN, "GET", "/O", "json"], [VERSION, TENANT, "a", GEN, "GET", "/O", "xml"]],
      [[VERSION, TENANT, "a", GEN, "GET", "/O", "json"], [VERSION.slice(0, 63), TENANT, "a", GEN, "GET", "/O", "json"]],
    ];
    const got = await keys(pairs.flat());
    pairs.forEach(([t, u], i) => {
      expect(got[2 * i], show(t)).toBe(keyOracle(...t));
      expect(got[2 * i + 1], `${show(t)} vs ${show(u)}`).not.toBe(got[2 * i]);
    });
  });

  const FORMAT_VALUES = [...FORMATS, "JsOn", "XML", "application/fhir+json;fhirVersion=4.0", "application/xml+fhir", "application/json+fhir", "application/xhtml+xml", "*/*", "application/*"];
  const ACCEPTS = [
    "", "*/*", "*/*;q=0.8", "application/fhir+json", "application/fhir+xml", "application/json", "application/xml", "text/html", "text/plain",
    "APPLICATION/FHIR+JSON", "Application/Fhir+Xml", "application/fhir+json, application/fhir+xml", "application/fhir+xml;q=0.9, */*;q=0.1",
    "application/json, text/plain, */*", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/fhir+json;fhirVersion=4.0",
    "image/png", "*/* ", " */*", "application/x-json", "xml", "json",
  ];
  const acceptArb = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 6, arbitrary: fc.constantFrom(...ACCEPTS) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...ACCEPTS), fc.constantFrom(...ACCEPTS)).map(([a, b]) => `${a}, ${b}`) },
  );

  it(`representation(format, accept) follows its doc (${N} cases)`, async () => {
    const cases = fc.sample(fc.tuple(fc.option(fc.constantFrom(...FORMAT_VALUES), { nil: undefined }), acceptArb), { numRuns: N, seed: seed + 7 });
    const got = await lua(cases.map(([fmt, a]) => ["repr", fmt === undefined ? undefined : toHex(fmt), a === undefined ? undefined : toHex(a)]));
    const f = new Failures();
    cases.forEach(([fmt, a], i) => f.check(got[i]?.[0] === reprOracle(fmt, a), () => `format ${show(fmt)}, accept ${show(a)}: got ${show(got[i]?.[0])}, oracle ${show(reprOracle(fmt, a))}`));
    f.assert();
  });

  it(`formatOf, readsOtherTypes and the representation read the canonical form as its decoded parameters say (${N} queries)`, async () => {
    const cases = fc.sample(fc.tuple(paramsArb.chain((ps) => fc.tuple(fc.constant(ps), spellAll(ps))), acceptArb), { numRuns: N, seed: seed + 8 });
    const got = await lua(cases.map(([[, raw], accept]) => ["parts", toHex(raw), accept === undefined ? undefined : toHex(accept)]));
    const f = new Failures();
    let chained = 0;
    let formats = 0;
    cases.forEach(([[ps, raw], accept], i) => {
      const [canon, err, fmt, others, repr] = got[i] as [string | undefined, string | undefined, string | undefined, boolean, Repr | undefined];
      const why = (): string => `${show(raw)} -> ${show(canon ?? err)}`;
      const wantFormat = formatOracle(ps);
      const wantOthers = othersOracle(ps);
      f.check(canon === canonOracle(ps), () => `${why()}: canonical oracle ${show(canonOracle(ps))}`);
      f.check(fromHex(fmt) === wantFormat, () => `${why()}: formatOf ${show(fromHex(fmt))}, oracle ${show(wantFormat)}`);
      f.check(others === wantOthers, () => `${why()}: readsOtherTypes ${show(others)}, oracle ${show(wantOthers)}`);
      f.check(repr === reprOracle(wantFormat, accept), () => `${why()}, accept ${show(accept)}: representation ${show(repr)}, oracle ${show(reprOracle(wantFormat, accept))}`);
      if (wantOthers) chained++;
      if (wantFormat !== undefined) formats++;
    });
    f.assert();
    // The generator reaches both answers often enough to mean something.
    expect(chained).toBeGreaterThan(N / 10);
    expect(N - chained).toBeGreaterThan(N / 10);
    expect(formats).toBeGreaterThan(N / 10);
  });

  it(`formatOf and readsOtherTypes on strings of canonical pieces agree with the oracle (${N} strings)`, async () => {
    // Straight on strings (no decoding on the way), with the edges: a first parameter, a bare
    // `_format`, an empty value, names that only start or end like a special.
    const piece = fc.oneof(
      fc.constantFrom("_format=xml", "_format=json", "_format=", "_format", "_formats=xml", "x_format=xml", "_format:x=1", "a=_format", "a=b%26_format%3Dxml"),
      fc.constantFrom("_include=Observation:subject", "_include:iterate=x", "_revinclude", "_has:Observation:patient:code=1", "_has=1", "_includes=1", "subject.name=x", "a=b.c", ".=1", "a:b.c=1", "code=x", "_id=1"),
    );
    // At most one `_format` parameter, as in a canonical form (a second one is refused).
    const isFormat = (p: string): boolean => p === "_format" || p.startsWith("_format=");
    const strings = fc.sample(
      fc.array(piece, { maxLength: 5 }).filter((ps) => ps.filter(isFormat).length <= 1),
      { numRuns: N, seed: seed + 9 },
    );
    const got = await lua(strings.flatMap((ps) => [["format", toHex(ps.join("&"))], ["others", toHex(ps.join("&"))]]));
    const f = new Failures();
    strings.forEach((ps, i) => {
      const params: Param[] = ps.map((p) => {
        const eq = p.indexOf("=");
        return eq < 0 ? { name: p, value: undefined } : { name: p.slice(0, eq), value: p.slice(eq + 1) };
      });
      const wantFormat = params.find((p) => p.name === "_format")?.value;
      f.check(fromHex(got[2 * i]?.[0]) === wantFormat, () => `${show(ps.join("&"))}: formatOf ${show(fromHex(got[2 * i]?.[0]))}, oracle ${show(wantFormat)}`);
      f.check(got[2 * i + 1]?.[0] === othersOracle(params), () => `${show(ps.join("&"))}: readsOtherTypes ${show(got[2 * i + 1]?.[0])}`);
    });
    f.assert();
    const edge = await lua([["format", undefined], ["others", undefined], ["others", toHex("")], ["format", toHex("")]]);
    expect(edge.map((r) => r[0])).toEqual([undefined, false, false, undefined]);
  });
});
