/**
 * The k6 scripts and the h2load fallback must measure the same thing: one scenario list and one
 * set of budgets, from bench/scenarios.ts and bench/budgets.ts.
 */
import { describe, expect, it } from "vitest";
import { BUDGETS, k6Thresholds } from "../../../bench/budgets.ts";
import { k6Options, k6Request } from "../../../bench/k6/plan.ts";
import { fallbackPlan } from "../../../bench/plan.ts";
import { requestList, SCENARIO_IDS, SCENARIOS } from "../../../bench/scenarios.ts";

describe("bench scenarios: one definition for k6 and the fallback", () => {
  it("k6 walks exactly the request list the fallback hands h2load, for every scenario", () => {
    for (const id of SCENARIO_IDS) {
      const plan = fallbackPlan(id);
      const n = plan.paths.length;
      expect(n, id).toBeGreaterThan(0);
      // Two laps, so the wrap-around is the same too.
      const k6Paths = Array.from({ length: 2 * n }, (_, i) => k6Request(id, i).path);
      expect(k6Paths, id).toEqual([...plan.paths, ...plan.paths]);
      expect(k6Request(id, 0).method).toBe(plan.method);
      expect(k6Request(id, 0).body).toBe(plan.body);
    }
  });

  it("k6 thresholds and the fallback's pass/fail use the same budgets", () => {
    const opts = k6Options(SCENARIO_IDS);
    expect(Object.keys(opts.scenarios).sort()).toEqual([...SCENARIO_IDS].sort());
    for (const id of SCENARIO_IDS) {
      expect(opts.scenarios[id]?.executor).toBe("constant-arrival-rate");
      expect(fallbackPlan(id).budget).toBe(BUDGETS[id]);
      const b = SCENARIOS[id].budget;
      expect(opts.thresholds[`http_req_duration{scenario:${id}}`]).toEqual([`p(50)<${b.p50Ms}`, `p(99)<${b.p99Ms}`, `max<${b.maxMs}`]);
      expect(opts.thresholds).toMatchObject(k6Thresholds(id, b));
    }
  });

  it("the point-of-care scenario opens charts with 8-12 requests for one patient each", () => {
    const reqs = requestList("poc", { acme: ["a1", "a2", "a3", "a4", "a5"] });
    const byPatient = new Map<string, number>();
    for (const r of reqs) {
      const p = /[?&/]patient=([^&]+)|\/Patient\/([^/?]+)/.exec(r.path);
      const id = p?.[1] ?? p?.[2] ?? "";
      byPatient.set(id, (byPatient.get(id) ?? 0) + 1);
    }
    expect([...byPatient.keys()].sort()).toEqual(["a1", "a2", "a3", "a4", "a5"]);
    for (const n of byPatient.values()) {
      expect(n).toBeGreaterThanOrEqual(8);
      expect(n).toBeLessThanOrEqual(12);
    }
  });
});
