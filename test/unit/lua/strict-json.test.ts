/**
 * fhir/json's decodeStrict under LuaJIT: the body step's parser must agree with JSON.parse on
 * every body it accepts, and refuse what parsers disagree on (duplicate keys, deep nesting,
 * non-standard numbers, raw control characters), since the gateway checks one reading of the
 * body and the upstream acts on its own.
 */
import { describe, expect, it } from "vitest";
import { runLua } from "../../harness/luajit.ts";

// The error first, so a refused body (doc nil) and an accepted one come back alike.
const DECODE = `function(body) local d, e = m.decodeStrict(body); return e, d end`;

type Verdict = { err: string | undefined; doc: unknown };

async function decode(bodies: readonly string[]): Promise<Verdict[]> {
  const got = await runLua("fhir.json", DECODE, bodies.map((b) => [b]));
  return got.map((g, i) => {
    if (!g.ok) throw new Error(`body ${i} (${JSON.stringify(bodies[i])}) raised: ${g.error}`);
    return { err: g.values[0] as string | undefined, doc: g.values[1] };
  });
}

const errors = async (bodies: readonly string[]): Promise<(string | undefined)[]> => (await decode(bodies)).map((v) => v.err);

/**
 * JSON.parse's value as it survives the trip back from Lua: the harness turns null into
 * undefined, and cjson cannot tell an empty array from an empty object when it re-encodes.
 */
function asFromLua(v: unknown): unknown {
  if (v === null) return undefined;
  if (Array.isArray(v)) return v.length === 0 ? {} : v.map(asFromLua);
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, asFromLua(x)]));
  return v;
}

async function expectSameAsJsonParse(bodies: readonly string[]): Promise<void> {
  const got = await decode(bodies);
  got.forEach((g, i) => {
    expect(g.err, bodies[i]).toBeUndefined();
    expect(g.doc, bodies[i]).toEqual(asFromLua(JSON.parse(bodies[i]!)));
  });
}

const nest = (depth: number, open: string, close: string, leaf: string): string => open.repeat(depth) + leaf + close.repeat(depth);

describe("valid bodies decode as JSON.parse reads them", () => {
  it("accepts FHIR resources with every shape the member count has to get right", async () => {
    await expectSameAsJsonParse([
      JSON.stringify({ resourceType: "Observation", id: "o1", status: "final", subject: { reference: "Patient/123" }, code: { coding: [{ system: "http://loinc.org", code: "1-8" }] } }),
      JSON.stringify({ resourceType: "Bundle", type: "transaction", entry: [{ fullUrl: "urn:uuid:1", resource: { resourceType: "Patient", id: "p" }, request: { method: "POST", url: "Patient" } }, { fullUrl: "urn:uuid:2", resource: { resourceType: "Observation", subject: { reference: "urn:uuid:1" } } }] }),
      // Quotes and backslashes must not end a string early, or the colons after them are miscounted.
      JSON.stringify({ resourceType: "Patient", name: [{ text: 'say "hi": \\ "a":1 \\' }], note: "\\", q: '"' }),
      JSON.stringify({ "urn:oid:1.2": { "a:b": "c:d", ":": ":" }, "http://x": "http://y:80/z" }),
      JSON.stringify({ resourceType: "Patient", extension: [], meta: {}, contained: [{}], a: [[], {}, [{}]] }),
      JSON.stringify({ resourceType: "Patient", active: null, name: [null, { given: [null, "x"] }], b: false, n: -1.5e3 }),
      String.raw`{"resourceType":"Patient","name":[{"text":"\u00e9\u20ac \ud83d\ude00 caf\u00e9 \" \\ \/ \b\f\n\r\t"}]}`,
      JSON.stringify({ résumé: "naïve €", "😀": ["日本"] }),
      "{}",
      "[]",
      "[1,2,3]",
      '"a:b"',
      "0",
      "true",
    ]);
  });

  it("accepts escaped control characters and whitespace between tokens", async () => {
    await expectSameAsJsonParse([
      String.raw`{"a":"tab\there","b":"nl\nhere","c":"nul\u0000here","d":"\u0001\u001f"}`,
      '{\n\t"resourceType" :\t"Patient" ,\r\n "id"\n:\n"1"\t,"x" : [ 1 ,\t2 ]\n}\n',
      '  \t\n[ { } , { "a" : { } } ]  \n',
    ]);
  });
});

describe("duplicate keys", () => {
  it("are refused at any depth, however the key is spelled, whatever the value", async () => {
    expect(
      await errors([
        '{"a":1,"a":2}',
        '{"a":1,"a":1}',
        '{"resourceType":"Observation","subject":{"reference":"Patient/1"},"subject":{"reference":"Patient/2"}}',
        '{"x":{"y":{"a":1,"b":2,"a":3}}}',
        '{"entry":[{"ok":1},{"a":1,"a":2}]}',
        '[[{"a":1}],[{"b":1,"b":2}]]',
        String.raw`{"a":1,"\u0061":2}`,
        String.raw`{"subject":1,"\u0073ubject":2}`,
        String.raw`{"\u00e9":1,"é":2}`,
        '{"a":null,"a":null}',
        '{"a":1,"a":null}',
        '{"a":{},"a":{}}',
        '{"a":{"b":1},"a":{"c":1}}',
        '{"a":[],"a":[1]}',
        '{"":1,"":2}',
        '{"a:b":1,"a:b":2}',
      ]),
    ).toEqual(Array(16).fill("duplicate_key"));
  });

  it("are not confused with equal keys in different objects", async () => {
    await expectSameAsJsonParse(['{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}', '[{"id":1},{"id":1}]', '{"a":1,"A":2,"a ":3}']);
  });
});

describe("what other parsers read differently is a syntax error", () => {
  it("allows 64 levels of nesting and refuses 65", async () => {
    expect(await errors([nest(64, "[", "]", "1"), nest(65, "[", "]", "1"), nest(64, '{"a":', "}", "1"), nest(65, '{"a":', "}", "1"), nest(32, '[{"a":', "}]", "1"), nest(33, '[{"a":', "}]", "1")])).toEqual([
      undefined,
      "syntax",
      undefined,
      "syntax",
      undefined,
      "syntax",
    ]);
  });

  it("refuses hex, NaN and infinities", async () => {
    const bodies = ["0x10", '{"a":0x10}', "NaN", '{"a":NaN}', "[nan]", "Infinity", "-Infinity", '{"a":-Infinity}', "[inf]", "[-inf]"];
    expect(await errors(bodies)).toEqual(Array(bodies.length).fill("syntax"));
  });

  it("refuses truncated, unterminated and trailing text", async () => {
    const bodies = ['{"a":1} x', '{"a":1}{}', "[1]]", '{"a":1', '{"a":"b', '"abc', '{"a:1}', '{"a":"b\\"}', "", " ", "{,}", '{"a"}', '{"a":1,}', "[1,]", "{'a':1}", '{a:1}'];
    expect(await errors(bodies)).toEqual(Array(bodies.length).fill("syntax"));
  });
});

describe("raw control characters inside strings", () => {
  it("are refused in values and keys", async () => {
    expect(await errors(['{"a":"x\u0001y"}', '{"a":"x\ty"}', '{"a":"x\ny"}', '{"a\u001f":1}', '["\r"]', '{"a":"\u001b[31m"}'])).toEqual(Array(6).fill("control_character"));
  });

  // NUL on its own: C parsers often take it for the end of the text.
  it("are refused for NUL too", async () => {
    expect(await errors(['{"a":"x\u0000y"}'])).toEqual(["control_character"]);
  });
});

/** Small LCG: the same cases every run, no dependency. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Val = null | boolean | number | string | Val[] | { [k: string]: Val };

// Characters that trip a naive member count: colons, quotes, backslashes, brackets, non-ASCII.
const CHARS = ["a", "b", "z", "A", "0", ":", '"', "\\", "{", "}", "[", "]", ",", " ", "/", "é", "€", "😀", "\n", "\t", "\u0001"];
const NUMBERS = ["0", "-1", "42", "3.5", "-0.25", "1e2", "2.5E-3", "123456789"];

function gen(rand: () => number): Val {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const str = (): string => Array.from({ length: Math.floor(rand() * 5) }, () => pick(CHARS)).join("");
  const value = (depth: number): Val => {
    const r = rand();
    if (depth > 4 || r < 0.45) return pick<Val>([null, true, false, Number(pick(NUMBERS)), str(), str()]);
    if (r < 0.65) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
    const o: Record<string, Val> = {};
    for (let n = Math.floor(rand() * 5); n > 0; n--) o[str()] = value(depth + 1);
    return o;
  };
  const top: Record<string, Val> = { resourceType: "Observation" };
  for (let n = 1 + Math.floor(rand() * 4); n > 0; n--) top[str()] = value(1);
  return top;
}

/**
 * Writes `v` as JSON with random whitespace and key spellings. With `dupAt`, the object at
 * that place (in write order, counting non-empty objects) gets one of its keys again; with
 * `ctrlAt`, the string at that place gets a raw control character. Counters say how many there were.
 */
function write(v: Val, rand: () => number, plan: { dupAt?: number; ctrlAt?: number }): { text: string; objects: number; strings: number } {
  let objects = 0;
  let strings = 0;
  const ws = (): string => (rand() < 0.2 ? [" ", "\t", "\n", "\r\n", "  "][Math.floor(rand() * 5)]! : "");
  const escapeAll = (s: string): string => `"${Array.from({ length: s.length }, (_, i) => `\\u${s.charCodeAt(i).toString(16).padStart(4, "0")}`).join("")}"`;
  const str = (s: string): string => {
    const n = strings++;
    const text = rand() < 0.2 ? escapeAll(s) : JSON.stringify(s);
    // 0x01-0x1f: NUL has a test of its own above, so one fault is not reported hundreds of times.
    return n === plan.ctrlAt ? `"${String.fromCharCode(1 + Math.floor(rand() * 31))}${text.slice(1)}` : text;
  };
  const num = (x: number): string => (rand() < 0.3 && Number.isInteger(x) && x !== 0 ? `${x}e0` : JSON.stringify(x));
  const w = (x: Val): string => {
    if (x === null || typeof x === "boolean") return JSON.stringify(x);
    if (typeof x === "number") return num(x);
    if (typeof x === "string") return str(x);
    if (Array.isArray(x)) return `[${ws()}${x.map((e) => `${ws()}${w(e)}${ws()}`).join(",")}${ws()}]`;
    const keys = Object.keys(x);
    if (keys.length === 0) return `{${ws()}}`;
    const n = objects++;
    const members = keys.map((k) => `${ws()}${str(k)}${ws()}:${ws()}${w(x[k]!)}${ws()}`);
    if (n === plan.dupAt) {
      const k = keys[Math.floor(rand() * keys.length)]!;
      const again = `${ws()}${rand() < 0.5 ? escapeAll(k) : JSON.stringify(k)}:${w(x[k]!)}`;
      members.splice(Math.floor(rand() * (members.length + 1)), 0, again);
    }
    return `{${members.join(",")}}`;
  };
  const text = w(v);
  return { text, objects, strings };
}

describe("random bodies against a JS oracle", () => {
  it("accepts what JSON.parse reads, and refuses the duplicates and raw control characters put in", async () => {
    const rand = lcg(16);
    const bodies: string[] = [];
    const want: (string | Val)[] = [];
    for (let i = 0; i < 400; i++) {
      const v = gen(rand);
      // A dry run counts the objects and strings, so the fault lands on one that exists.
      const { objects, strings } = write(v, lcg(i), {});
      const mode = i % 3;
      if (mode === 1) {
        const { text } = write(v, lcg(i), { dupAt: Math.floor(rand() * objects) });
        bodies.push(text);
        want.push("duplicate_key");
      } else if (mode === 2) {
        const { text } = write(v, lcg(i), { ctrlAt: Math.floor(rand() * strings) });
        bodies.push(text);
        want.push("control_character");
      } else {
        const { text } = write(v, lcg(i), {});
        bodies.push(text);
        want.push(v);
      }
    }
    const got = await decode(bodies);
    const mismatches = got.flatMap((g, i) => {
      const w = want[i];
      if (typeof w === "string") return g.err === w ? [] : [{ body: bodies[i], want: w, got: g.err }];
      if (g.err !== undefined) return [{ body: bodies[i], want: "ok", got: g.err }];
      // The text must also be what JSON.parse reads, or the oracle itself is wrong.
      expect(JSON.parse(bodies[i]!)).toEqual(w);
      try {
        expect(g.doc).toEqual(asFromLua(w));
        return [];
      } catch {
        return [{ body: bodies[i], want: "same as JSON.parse", got: JSON.stringify(g.doc) }];
      }
    });
    expect(mismatches).toEqual([]);
  });
});
