import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { greaterThanPattern } from "../../../compiler/emit/cache-conf.ts";

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
