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

// A shared dict with lua-resty-core's incr/get/get_keys semantics, so record() and render()
// run under plain LuaJIT. The Lua function records every case, then renders.
const RECORD_ALL = `function(cases, maxSeries)
  local store = {}
  local dict = {}
  function dict:incr(key, by, init)
    local v = store[key]
    if v == nil then
      if init == nil then return nil, "not found" end
      v = init
    end
    store[key] = v + by
    return store[key]
  end
  function dict:get(key) return store[key] end
  function dict:get_keys() local ks = {} for k in pairs(store) do ks[#ks + 1] = k end return ks end
  ngx = { shared = { fe_metrics = dict } }
  for _, c in ipairs(cases) do m.record(c[1], c[2], c[3], maxSeries) end
  return m.render("v1")
end`;

describe("metrics series cap", () => {
  it("counts label sets past metrics.maxSeries under other, loses no request, and counts the overflow", async () => {
    const types = ["Patient", "Observation", "Condition", "Encounter", "Procedure", "Immunization", "CarePlan", "Goal"];
    const cases = types.flatMap((t) => Array.from({ length: 3 }, () => [`acme\tsearch-type\t${t}`, 200, 0.002]));
    const [text] = await luaFirst<string>("metrics.metrics", RECORD_ALL, [[cases, 4]]);
    const series = (text ?? "").split("\n").filter((l) => l.startsWith("fe_requests_total{"));
    const byType = new Map(series.map((l) => [/resource_type="([^"]+)"/.exec(l)?.[1] ?? "", Number(l.split(" ").pop())]));
    // Four label sets fit the cap; everything later is "other", and no request is dropped.
    expect(series.length).toBeLessThanOrEqual(5);
    expect(byType.get("other")).toBe(3 * (types.length - 4));
    expect([...byType.values()].reduce((a, b) => a + b, 0)).toBe(cases.length);
    expect(text).toMatch(/^fe_metrics_series_overflow_total 12$/m);
    expect(text).toMatch(/^fe_request_duration_seconds_count\{tenant="acme"\} 24$/m);
  });
});
