/**
 * k6 options and request plan, built from bench/scenarios.ts. Pure (no k6 imports), so the
 * unit tests can compare it with the fallback's plan without a k6 binary.
 */
import { k6Thresholds } from "../budgets.ts";
import { requestList, SCENARIOS, type BenchRequest, type ScenarioId } from "../scenarios.ts";

export interface K6Settings {
  /** Requests per second for each scenario (constant arrival rate). */
  readonly rate: number;
  /** k6 duration string, e.g. "30s". */
  readonly duration: string;
  readonly preAllocatedVUs: number;
  readonly maxVUs: number;
}

export const DEFAULT_K6: K6Settings = { rate: 200, duration: "30s", preAllocatedVUs: 20, maxVUs: 200 };

export interface K6Scenario {
  readonly executor: "constant-arrival-rate";
  readonly rate: number;
  readonly timeUnit: "1s";
  readonly duration: string;
  readonly preAllocatedVUs: number;
  readonly maxVUs: number;
  readonly exec: "run";
  readonly env: { readonly SCENARIO: ScenarioId };
  readonly tags: { readonly scenario: ScenarioId };
}

export interface K6Options {
  readonly scenarios: Record<string, K6Scenario>;
  readonly thresholds: Record<string, string[]>;
  readonly discardResponseBodies: true;
}

export function k6Options(ids: readonly ScenarioId[], s: K6Settings = DEFAULT_K6): K6Options {
  const scenarios: Record<string, K6Scenario> = {};
  let thresholds: Record<string, string[]> = {};
  for (const id of ids) {
    scenarios[id] = {
      executor: "constant-arrival-rate",
      rate: s.rate,
      timeUnit: "1s",
      duration: s.duration,
      preAllocatedVUs: s.preAllocatedVUs,
      maxVUs: s.maxVUs,
      exec: "run",
      env: { SCENARIO: id },
      tags: { scenario: id },
    };
    thresholds = { ...thresholds, ...k6Thresholds(id, SCENARIOS[id].budget) };
  }
  return { scenarios, thresholds, discardResponseBodies: true };
}

/** The request a k6 iteration sends: the scenario's list, walked in order. */
export function k6Request(id: ScenarioId, iteration: number): BenchRequest {
  const list = requestList(id);
  const r = list[iteration % list.length];
  if (r === undefined) throw new Error(`scenario ${id} has no requests`);
  return r;
}
