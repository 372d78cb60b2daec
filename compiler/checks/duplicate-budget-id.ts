import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/**
 * Budget ids key the buckets, name the RateLimit-Policy item and label metrics: two budgets
 * with one id would share buckets and headers, each spending the other's tokens.
 */
export const duplicateBudgetId: Check = {
  code: "FE2602",
  name: "duplicate-budget-id",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const first = new Map<string, number>();
      (t.budgets ?? []).forEach((b, j) => {
        const prev = first.get(b.id);
        if (prev === undefined) first.set(b.id, j);
        else out.push(diag("FE2602", `tenants[${i}].budgets[${j}].id`, `duplicates tenants[${i}].budgets[${prev}].id ${JSON.stringify(b.id)}`, "budget ids must be unique within a tenant"));
      });
    });
    return out;
  },
};
