/**
 * The query corpus (issue #12): hand-written cache-poisoning and parser-differential queries
 * through the real nginx. Each is either refused (400 OperationOutcome, and the recording
 * upstream saw nothing) or forwarded as exactly its canonical form, which is what the cache key
 * and every check read: two spellings that an upstream reads alike must arrive alike, and two it
 * reads apart must arrive apart. Requests are raw bytes, since fetch would re-encode them.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { clearUpstream, stack, upstreamRequests } from "../harness/env.ts";
import { expectOutcome } from "../harness/fhir.ts";
import { rawRequest } from "../harness/raw-http.ts";

/** What the spec says is wrong with a refused query (documentation: the response does not carry the code). */
type Fault = "bad_percent" | "double_encoded" | "control" | "bad_utf8" | "semicolon" | "empty_name" | "long_name" | "too_many" | "repeated" | "bad_count";

interface Case {
  readonly name: string;
  /** The raw query, one char per byte (bytes >= 0x80 are sent as such). */
  readonly query: string;
  /** The query the upstream must receive, or the fault it is refused for. */
  readonly expect: { readonly canonical: string } | { readonly refused: Fault };
}

const ok = (name: string, query: string, canonical: string): Case => ({ name, query, expect: { canonical } });
const no = (name: string, query: string, refused: Fault): Case => ({ name, query, expect: { refused } });

/** UTF-8 bytes as a byte string. */
const utf8 = (s: string): string => Buffer.from(s, "utf8").toString("latin1");
const params = (n: number): string[] => Array.from({ length: n }, (_, i) => `p${String(i).padStart(3, "0")}=${i}`);

const CASES: readonly Case[] = [
  // One key per reading: order of distinct names, hex case, and encodings an upstream decodes alike.
  ok("names in order", "code=1234-5&status=final", "code=1234-5&status=final"),
  ok("names reversed", "status=final&code=1234-5", "code=1234-5&status=final"),
  ok("three names, order 1", "subject=Patient/1&code=x&_count=5", "_count=5&code=x&subject=Patient/1"),
  ok("three names, order 2", "_count=5&subject=Patient/1&code=x", "_count=5&code=x&subject=Patient/1"),
  ok("three names, order 3", "code=x&_count=5&subject=Patient/1", "_count=5&code=x&subject=Patient/1"),
  ok("modifiers in order", "code:text=x&subject:Patient=1", "code:text=x&subject:Patient=1"),
  ok("modifiers reversed", "subject:Patient=1&code:text=x", "code:text=x&subject:Patient=1"),
  ok("repeated plain name keeps its order", "code=b&code=a", "code=b&code=a"),
  ok("repeated plain name, other name first", "status=final&code=b&code=a", "code=b&code=a&status=final"),
  ok("repeated plain name, other name between", "code=b&status=final&code=a", "code=b&code=a&status=final"),
  ok("repeated _include keeps its order", "_include=Observation:subject&_include=Observation:performer", "_include=Observation:subject&_include=Observation:performer"),
  ok("repeated _include, the other order is another query", "_include=Observation:performer&_include=Observation:subject", "_include=Observation:performer&_include=Observation:subject"),
  ok("_sort comma list kept", "_sort=-date,code", "_sort=-date,code"),
  ok("_sort comma list in the other order is another query", "_sort=code,-date", "_sort=code,-date"),
  ok("encoded dot %2e", "code=%2e", "code=."),
  ok("encoded dots %2E%2e", "code=%2E%2e", "code=.."),
  ok("encoded slash and dots in a value", "subject=Patient%2F..%2f1", "subject=Patient/../1"),
  ok("raw pipe", "code=http://loinc.org|1234-5", "code=http://loinc.org%7C1234-5"),
  ok("upper-case %7C", "code=http://loinc.org%7C1234-5", "code=http://loinc.org%7C1234-5"),
  ok("lower-case %7c and encoded :/", "code=http%3a%2F%2Floinc.org%7c1234-5", "code=http://loinc.org%7C1234-5"),
  ok("raw comma", "code=a,b", "code=a,b"),
  ok("upper-case %2C", "code=a%2Cb", "code=a,b"),
  ok("lower-case %2c", "code=a%2cb", "code=a,b"),
  ok("+ is a space", "code=a+b", "code=a%20b"),
  ok("%20 is a space", "code=a%20b", "code=a%20b"),
  ok("%2B is a plus, not a space", "code=a%2Bb", "code=a%2Bb"),
  ok("%2b is a plus, not a space", "code=a%2bb", "code=a%2Bb"),
  ok("+ in a name", "code+x=1", "code%20x=1"),
  ok("unreserved characters decoded", "code=%41%62%7e%2D%5F%30", "code=Ab~-_0"),
  ok("sub-delims kept literal", "code=:@/?!$'()*", "code=:@/?!$'()*"),
  ok("encoded sub-delims decoded", "code=%3A%40%2F%3F%21%24%27%28%29%2A", "code=:@/?!$'()*"),
  ok("raw unsafe characters encoded", 'code=a"b<c>d{e}f^g`h\\i', "code=a%22b%3Cc%3Ed%7Be%7Df%5Eg%60h%5Ci"),
  ok("encoded & stays inside the value", "code=a%26status%3Dfinal", "code=a%26status%3Dfinal"),
  ok("encoded ; is kept encoded", "code=a%3Bb", "code=a%3Bb"),
  ok("encoded # is kept encoded", "code=a%23b", "code=a%23b"),
  ok("a lone encoded percent", "code=%25", "code=%25"),
  ok("encoded percent before non-hex", "code=%25zz", "code=%25zz"),
  ok("= inside a value", "code=a=b", "code=a%3Db"),
  ok("a value of =", "code==", "code=%3D"),
  ok("empty query", "", ""),
  ok("only empty pieces, same as the empty query", "&&&", ""),
  ok("empty pieces dropped", "&&code=x&&status=final&", "code=x&status=final"),
  ok("empty value kept", "code=&status=final", "code=&status=final"),
  ok("name-only parameter", "status=final&code", "code&status=final"),
  ok("name-only and empty value differ", "status=final&code=", "code=&status=final"),
  ok("_count=%31%30 is 10", "_count=%31%30", "_count=10"),
  ok("encoded _count name", "%5Fcount=10", "_count=10"),
  ok("_count of zero", "_count=0", "_count=0"),
  ok("_count with leading zeros is kept as sent", "_count=007", "_count=007"),
  ok("each special once", "_elements=id,code&_summary=data&_sort=date&_count=2", "_count=2&_elements=id,code&_sort=date&_summary=data"),
  ok("_Count is not _count", "_Count=x&_Count=y", "_Count=x&_Count=y"),
  ok("non-ASCII value, raw bytes", `code=${utf8("é")}`, "code=%C3%A9"),
  ok("non-ASCII value, lower-case hex", "code=%c3%a9", "code=%C3%A9"),
  ok("4-byte UTF-8", "code=%F0%9F%98%80", "code=%F0%9F%98%80"),
  ok("highest code point U+10FFFF", "code=%F4%8F%BF%BF", "code=%F4%8F%BF%BF"),
  ok("non-ASCII name, encoded", "c%C3%B3digo=1", "c%C3%B3digo=1"),
  ok("non-ASCII name, raw bytes", `${utf8("código")}=1`, "c%C3%B3digo=1"),
  ok("name of 128 bytes", `${"n".repeat(128)}=1`, `${"n".repeat(128)}=1`),
  ok("? inside the query", "code=a?b", "code=a?b"),
  ok("raw # is data, not a fragment", "code=a#b", "code=a%23b"),
  ok("fullwidth solidus stays encoded", "code=%EF%BC%8F", "code=%EF%BC%8F"),
  ok("right-to-left override stays encoded", "code=%E2%80%AEx", "code=%E2%80%AEx"),
  ok("_has chain name kept literal", "_has:Observation:patient:code=1234-5", "_has:Observation:patient:code=1234-5"),
  ok("exactly 100 parameters, shuffled", [...params(100)].reverse().join("&"), params(100).join("&")),
  ok("100 parameters and empty pieces", `&&${params(100).join("&&")}&`, params(100).join("&")),

  // Separators and control characters: another server would split or cut here.
  no("; between parameters", "code=a;status=final", "semicolon"),
  no("; at the end", "code=x;", "semicolon"),
  no("; at the start", ";code=x", "semicolon"),
  no("; after an encoded one", "code=a%3B;b", "semicolon"),
  no("%00 in a value", "code=a%00b", "control"),
  no("%00 in a name", "code%00=1", "control"),
  no("%00 alone", "%00", "control"),
  no("%0a", "code=a%0ab", "control"),
  no("%0D%0A (header splitting)", "code=a%0D%0AX-Evil:%201", "control"),
  no("%1F", "code=%1F", "control"),
  no("%7F", "code=%7F", "control"),
  no("raw tab", "code=a\tb", "control"),
  no("raw DEL", "code=a\x7fb", "control"),

  // Invalid UTF-8: each has a reading as "/" or "." in some decoder, or none at all.
  no("overlong / %C0%AF", "code=%C0%AF", "bad_utf8"),
  no("overlong . %C0%AE", "code=%C0%AE%C0%AE", "bad_utf8"),
  no("3-byte overlong / %E0%80%AF", "code=%E0%80%AF", "bad_utf8"),
  no("4-byte overlong / %F0%80%80%AF", "code=%F0%80%80%AF", "bad_utf8"),
  no("surrogate %ED%A0%80", "code=%ED%A0%80", "bad_utf8"),
  no("low surrogate %ED%BF%BF", "code=%ED%BF%BF", "bad_utf8"),
  no("overlong NUL %C0%80", "code=a%C0%80b", "bad_utf8"),
  no("stray continuation %80", "code=%80", "bad_utf8"),
  no("stray continuation after a character", "code=%C3%A9%A9", "bad_utf8"),
  no("above U+10FFFF", "code=%F4%90%80%80", "bad_utf8"),
  no("byte %FF", "code=%FF", "bad_utf8"),
  no("truncated sequence", "code=%E2%82", "bad_utf8"),
  no("raw continuation byte", "code=a\x80", "bad_utf8"),
  no("raw lead byte without continuation", "code=\xc3(", "bad_utf8"),
  no("invalid UTF-8 in a name", "c%C0%AFde=1", "bad_utf8"),

  // Percent sequences with two readings.
  no("%G1", "code=%G1", "bad_percent"),
  no("% at the end", "code=a%", "bad_percent"),
  no("%4 at the end", "code=%4", "bad_percent"),
  no("%% ", "code=%%41", "bad_percent"),
  no("bad % in a name", "co%de=1", "bad_percent"),
  no("double-encoded dot %252e", "code=%252e", "double_encoded"),
  no("double-encoded dot %252E", "subject=Patient%252E%252E%252F1", "double_encoded"),
  no("double-encoded A %2541", "code=%2541", "double_encoded"),
  // A decoded "%" then two hex digits, whatever their spelling: the canonical form would read
  // as double encoding, so it is refused the first time.
  no("%25 then encoded hex digits", "code=%25%34%31", "double_encoded"),
  no("double-encoded percent %2525", "code=%2525", "double_encoded"),
  no("double-encoded name %255Fcount", "%255Fcount=1", "double_encoded"),

  // Names.
  no("empty name", "=x", "empty_name"),
  no("empty name after a good one", "code=1&=2", "empty_name"),
  no("a lone =", "=", "empty_name"),
  no("name of 129 bytes", `${"n".repeat(129)}=1`, "long_name"),
  no("name of 129 bytes once decoded", `${"n".repeat(128)}%41=1`, "long_name"),
  no("name of 130 bytes of non-ASCII", utf8("é".repeat(65)), "long_name"),
  no("101 parameters", params(101).join("&"), "too_many"),
  no("101 parameters of one name", Array.from({ length: 101 }, () => "code=x").join("&"), "too_many"),

  // Specials one side might read first and the other last.
  no("repeated _count", "_count=10&_count=1000", "repeated"),
  no("repeated _count, same value", "_count=10&code=x&_count=10", "repeated"),
  no("repeated _count, one encoded", "_count=1&%5Fcount=1000", "repeated"),
  no("repeated _sort", "_sort=date&_sort=-date", "repeated"),
  no("repeated _format", "_format=json&_format=xml", "repeated"),
  no("repeated _summary", "_summary=true&_summary=false", "repeated"),
  no("repeated _elements", "_elements=id&_elements=code", "repeated"),
  no("repeated _summary, one name-only", "_summary=count&_summary", "repeated"),
  no("_count=-1", "_count=-1", "bad_count"),
  no("_count=1e3", "_count=1e3", "bad_count"),
  no("_count=0x10", "_count=0x10", "bad_count"),
  no("_count empty", "_count=", "bad_count"),
  no("_count name-only", "code=x&_count", "bad_count"),
  no("_count=+5 (a space)", "_count=+5", "bad_count"),
  no("_count=%2D1", "_count=%2D1", "bad_count"),
  no("_count=10.0", "_count=10.0", "bad_count"),
];

const TARGET = "/acme/fhir/Observation";
const UPSTREAM = "/acme/R4/Observation";

function request(query: string): Buffer {
  return Buffer.from(`GET ${TARGET}?${query} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, "latin1");
}

describe("the query corpus: refused before the upstream, or forwarded as its canonical form", () => {
  beforeEach(clearUpstream);

  it("holds at least 60 cases, each named once", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of CASES) {
    const want = "canonical" in c.expect ? `-> ${c.expect.canonical.length > 60 ? c.expect.canonical.slice(0, 60) + "..." : c.expect.canonical}` : `-> 400 (${c.expect.refused})`;
    it(`${c.name} ${want}`, async () => {
      const res = await rawRequest(stack().gatewayPort, request(c.query));
      const seen = await upstreamRequests();
      if ("refused" in c.expect) {
        expectOutcome(res.status, 400, res.headers["content-type"], res.body);
        expect(seen).toEqual([]);
      } else {
        // An empty canonical query is no query: the upstream gets no dangling "?".
        expect(seen.map((r) => r.url)).toEqual([c.expect.canonical === "" ? UPSTREAM : `${UPSTREAM}?${c.expect.canonical}`]);
        expect(res.status, res.body.slice(0, 300)).toBeGreaterThanOrEqual(200);
        expect(res.status, res.body.slice(0, 300)).toBeLessThan(300);
      }
    });
  }

  it("queries with one reading share one upstream form, and those with two readings do not", async () => {
    const groups: readonly (readonly string[])[] = [
      ["code=a|b&status=final", "status=final&code=a%7Cb", "status=final&code=a%7cb", "&status=final&&code=a%7C%62"],
      ["code=a%20b", "code=a+b", "code=%61+%62"],
      ["code=a%2Bb", "code=a%2bb"],
    ];
    const forms: string[][] = [];
    for (const g of groups) {
      const urls: string[] = [];
      for (const q of g) {
        await clearUpstream();
        await rawRequest(stack().gatewayPort, request(q));
        urls.push(...(await upstreamRequests()).map((r) => r.url));
      }
      expect(urls, JSON.stringify(g)).toHaveLength(g.length);
      expect(new Set(urls).size, JSON.stringify(urls)).toBe(1);
      forms.push(urls);
    }
    // "+" (a space) and "%2B" (a plus) are two values, so two keys.
    expect(forms[1]?.[0]).not.toBe(forms[2]?.[0]);
  });
});
