import { budgetRate } from "../ir.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** Past this, a bucket's spent mark (seconds since 2025 x rate) loses whole tokens in a double. */
export const MAX_RATE_PER_SECOND = 1_000_000;

/**
 * A budget refilling faster than a million cost tokens a second cannot be counted exactly
 * (ratelimit/budgets ORIGIN): past 2^48 a double drops fractions of a token, and nearer 2^53
 * it drops whole costs, so the bucket would admit everything.
 */
export const budgetRateCheck: Check = {
  code: "FE2605",
  name: "budget-rate",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      (t.budgets ?? []).forEach((b, j) => {
        const r = budgetRate(b);
        if (r <= MAX_RATE_PER_SECOND) return;
        out.push(diag("FE2605", `tenants[${i}].budgets[${j}].rate`, `${r} cost tokens a second is more than the ${MAX_RATE_PER_SECOND} a bucket counts exactly`, `perSecond(${MAX_RATE_PER_SECOND}) or less, or no budget`));
      });
      const miss = t.cache?.missBudget;
      if (miss !== undefined && budgetRate(miss) > MAX_RATE_PER_SECOND) {
        out.push(diag("FE2605", `tenants[${i}].cache.missBudget.rate`, `${budgetRate(miss)} cost tokens a second is more than the ${MAX_RATE_PER_SECOND} a bucket counts exactly`, `perSecond(${MAX_RATE_PER_SECOND}) or less, or no budget`));
      }
    });
    return out;
  },
};
