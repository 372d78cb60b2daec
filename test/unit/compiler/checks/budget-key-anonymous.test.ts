import { describe, expect, it } from "vitest";
import { budgetKeyAnonymous } from "../../../../compiler/checks/budget-key-anonymous.ts";
import { perMinute, seconds, type BudgetKey, type BudgetProps } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const budget = (per?: BudgetKey[]): BudgetProps => ({ id: "b", rate: perMinute(600), ...(per === undefined ? {} : { per }) });

describe("FE2604 budget-key-anonymous", () => {
  it("accepts budgets of an anonymous tenant keyed by what it has: the tenant and the class", () => {
    expect(budgetKeyAnonymous.check(policy([tenant("a", { budgets: [budget(), budget(["tenant"]), budget(["class"]), budget(["tenant", "class"])] })]))).toEqual([]);
  });

  it("accepts token keys on a tenant with issuers", () => {
    const t = tenant("a", { anonymous: undefined, issuers: ["idp"], budgets: [budget(["client_id", "sub", "patient", "class"])] });
    expect(budgetKeyAnonymous.check(policy([t]))).toEqual([]);
  });

  it("reports each token key of an anonymous tenant's budget at its place in per", () => {
    const ds = budgetKeyAnonymous.check(policy([tenant("a"), tenant("b", { budgets: [budget(["tenant"]), budget(["class", "client_id", "sub", "patient"])] })]));
    expect(ds.map((d) => [d.code, d.path])).toEqual([
      ["FE2604", "tenants[1].budgets[1].per[1]"],
      ["FE2604", "tenants[1].budgets[1].per[2]"],
      ["FE2604", "tenants[1].budgets[1].per[3]"],
    ]);
    expect(ds[0]?.message).toBe('"client_id" comes from a token, and the anonymous tenant has none: the budget would never apply');
    expect(ds[0]?.hint).toBe('key it by "tenant" or "class", or give the tenant issuers');
  });
});

describe("FE2604 on a cache's miss budget", () => {
  it("reports a miss budget keyed by a token's value on an anonymous tenant", () => {
    const ds = budgetKeyAnonymous.check(policy([tenant("a"), tenant("b", { cache: { ttl: { ValueSet: seconds(5) }, missBudget: { id: "m", per: ["client_id"], rate: perMinute(60) } } })]));
    expect(ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`)).toEqual([
      'FE2604 tenants[1].cache.missBudget.per[0]: "client_id" comes from a token, and the anonymous tenant has none: the budget would never apply (key it by "tenant" or "class", or give the tenant issuers)',
    ]);
  });
});
