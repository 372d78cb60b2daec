import type { BudgetKey } from "../../policy-dsl/index.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** The keys whose values come from a token. */
const FROM_TOKEN: ReadonlySet<BudgetKey> = new Set(["client_id", "sub", "patient"]);

/**
 * A request without one of a budget's key values is not limited by it, and an anonymous
 * tenant's requests carry no token: a budget keyed by a token's value would never apply, and
 * the tenant would look limited while it is not.
 */
export const budgetKeyAnonymous: Check = {
  code: "FE2604",
  name: "budget-key-anonymous",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      if (t.anonymous !== true) return;
      (t.budgets ?? []).forEach((b, j) => {
        (b.per ?? []).forEach((k, n) => {
          if (!FROM_TOKEN.has(k)) return;
          out.push(diag("FE2604", `tenants[${i}].budgets[${j}].per[${n}]`, `${JSON.stringify(k)} comes from a token, and the anonymous tenant has none: the budget would never apply`, 'key it by "tenant" or "class", or give the tenant issuers'));
        });
      });
      (t.cache?.missBudget?.per ?? []).forEach((k, n) => {
        if (!FROM_TOKEN.has(k)) return;
        out.push(diag("FE2604", `tenants[${i}].cache.missBudget.per[${n}]`, `${JSON.stringify(k)} comes from a token, and the anonymous tenant has none: the budget would never apply`, 'key it by "tenant" or "class", or give the tenant issuers'));
      });
    });
    return out;
  },
};
