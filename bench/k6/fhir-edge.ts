/**
 * k6 script for the fhir-edge scenarios (bench/scenarios.ts), with the budgets as thresholds.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SCENARIOS=poc,mixed -e RATE=500 bench/k6/fhir-edge.ts
 *
 * Needs k6 >= 0.57 (TypeScript without a build step). BEARER sets the Authorization header.
 */
import { check } from "k6";
import exec from "k6/execution";
import http from "k6/http";
import { isScenarioId, SCENARIO_IDS, type ScenarioId } from "../scenarios.ts";
import { DEFAULT_K6, k6Options, k6Request } from "./plan.ts";

const BASE_URL = __ENV["BASE_URL"] ?? "http://127.0.0.1:8080";
const chosen = (__ENV["SCENARIOS"] ?? SCENARIO_IDS.join(",")).split(",").filter(isScenarioId);

export const options = k6Options(chosen, {
  ...DEFAULT_K6,
  rate: Number(__ENV["RATE"] ?? DEFAULT_K6.rate),
  duration: __ENV["DURATION"] ?? DEFAULT_K6.duration,
});

export function run(): void {
  const id = __ENV["SCENARIO"] as ScenarioId;
  const r = k6Request(id, exec.scenario.iterationInTest);
  const headers: Record<string, string> = { Accept: "application/fhir+json", ...(r.headers ?? {}) };
  const bearer = __ENV["BEARER"];
  if (bearer !== undefined) headers["Authorization"] = `Bearer ${bearer}`;
  const res = http.request(r.method, `${BASE_URL}${r.path}`, r.body ?? null, { headers, tags: { scenario: id } });
  check(res, { "2xx": (x) => x.status >= 200 && x.status < 300 });
}
