import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CACHEABLE_TYPE_PATTERN, greaterThanPattern, PRIVATE_PATTERN } from "../../../nginx/cache-conf.ts";

/** nginx map regexes are PCRE; these use only what JavaScript reads the same way. */
function re(pattern: string): RegExp {
  const ci = pattern.startsWith("~*");
  return new RegExp(pattern.slice(ci ? 2 : 1), ci ? "i" : "");
}

describe("the size cap's pattern", () => {
  it("matches exactly the decimal strings greater than the cap", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 34 }), fc.integer({ min: 0, max: 2 ** 35 }), (cap, length) => {
        expect(re(greaterThanPattern(cap)).test(String(length))).toBe(length > cap);
      }),
      { numRuns: 10_000 },
    );
  });

  it("is exact at the edges", () => {
    for (const cap of [0, 1, 9, 10, 99, 100, 1023, 1024, 1048576, 999999]) {
      const r = re(greaterThanPattern(cap));
      for (const n of [cap - 1, cap, cap + 1, cap * 10, cap + 10]) if (n >= 0) expect(r.test(String(n)), `${n} vs ${cap}`).toBe(n > cap);
    }
  });
});

describe("the Cache-Control and Content-Type patterns", () => {
  it("keeps no-store, private and no-cache out, in any place and case, and nothing else", () => {
    const out = ["no-store", "private", "no-cache", "max-age=60, private", "Private", "public, no-store", "no-cache=\"set-cookie\"", "private,max-age=0"];
    const kept = ["public, max-age=60", "max-age=0", "must-revalidate", "s-maxage=10", "", "proxy-revalidate", "no-transform"];
    for (const v of out) expect(re(PRIVATE_PATTERN).test(v), v).toBe(true);
    for (const v of kept) expect(re(PRIVATE_PATTERN).test(v), v).toBe(false);
  });

  it("stores FHIR JSON and XML, with parameters, and no other type", () => {
    const ok = ["application/fhir+json", "application/fhir+json; charset=utf-8", "APPLICATION/FHIR+XML", "application/json", "application/json+fhir;fhirVersion=4.0", "application/xml+fhir"];
    const no = ["text/html", "application/xml", "text/plain", "", "application/fhir+jsonx", "application/octet-stream", "multipart/form-data"];
    for (const v of ok) expect(re(CACHEABLE_TYPE_PATTERN).test(v), v).toBe(true);
    for (const v of no) expect(re(CACHEABLE_TYPE_PATTERN).test(v), v).toBe(false);
  });
});
