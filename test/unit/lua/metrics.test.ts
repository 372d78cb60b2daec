/** metrics.bucketIndex is unrolled for the JIT; it must still agree with LATENCY_BUCKETS. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { luaFirst } from "../../harness/luajit.ts";

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const oracle = (s: number): number => {
  const i = BUCKETS.findIndex((b) => s <= b);
  return i < 0 ? BUCKETS.length : i;
};

describe("metrics.bucketIndex", () => {
  it("puts every latency in the first bucket whose bound covers it, +Inf last", async () => {
    const values = [0, ...BUCKETS, ...BUCKETS.map((b) => b * 1.0001), 11, 1e6, ...fc.sample(fc.double({ min: 0, max: 20, noNaN: true }), 500)];
    const got = await luaFirst<number>("metrics.metrics", "bucketIndex", values.map((v) => [v]));
    values.forEach((v, i) => expect(got[i], String(v)).toBe(oracle(v)));
  });
});
