/**
 * The fallback driver's plan for a scenario: what h2load sends. Built from the same
 * bench/scenarios.ts list the k6 script walks (bench/k6/plan.ts), so the two cannot drift.
 */
import { commonHeaders, requestList, SCENARIOS, type ScenarioId } from "./scenarios.ts";
import type { Budget } from "./budgets.ts";

export interface FallbackPlan {
  readonly paths: readonly string[];
  readonly method: "GET" | "POST";
  readonly body?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly budget: Budget;
}

export function fallbackPlan(id: ScenarioId): FallbackPlan {
  const reqs = requestList(id);
  const methods = new Set(reqs.map((r) => r.method));
  const bodies = new Set(reqs.map((r) => r.body));
  // h2load sends one method and one body per run; a scenario that mixes them needs k6.
  if (methods.size !== 1 || bodies.size !== 1) throw new Error(`scenario ${id} mixes methods or bodies; the h2load fallback cannot drive it`);
  const first = reqs[0];
  if (first === undefined) throw new Error(`scenario ${id} has no requests`);
  return {
    paths: reqs.map((r) => r.path),
    method: first.method,
    ...(first.body !== undefined ? { body: first.body } : {}),
    headers: commonHeaders(reqs),
    budget: SCENARIOS[id].budget,
  };
}
