import { diag, type Diagnostic } from "../diagnostics.ts";
import { budgetBurst, lowerCosts } from "../ir.ts";
import type { Check } from "./types.ts";

/**
 * A miss budget is spent by cacheable reads and searches. A burst below what one of them costs
 * could never be paid: every cacheable request of the tenant would be a 429.
 */
export const cacheMissBudgetBurst: Check = {
  code: "FE2704",
  name: "cache-miss-budget-burst",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const b = t.cache?.missBudget;
      if (b === undefined) return;
      const c = lowerCosts(policy.costs, t.costs);
      const most = Math.max(c.read, c.search, c.complex_search);
      const burst = budgetBurst(b);
      if (burst >= most) return;
      out.push(diag("FE2704", `tenants[${i}].cache.missBudget.burst`, `a burst of ${burst} cannot pay for one cacheable request, which costs up to ${most}`, `tokens(${most}) or more`));
    });
    return out;
  },
};
