import { describe, expect, it } from "vitest";
import { duplicateBudgetId } from "../../../../compiler/checks/duplicate-budget-id.ts";
import { perMinute, type BudgetProps } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const budget = (id: string): BudgetProps => ({ id, rate: perMinute(600) });

describe("FE2602 duplicate-budget-id", () => {
  it("allows the same budget id in different tenants", () => {
    const budgets = [budget("per-client"), budget("tenant")];
    expect(duplicateBudgetId.check(policy([tenant("a", { budgets }), tenant("b", { budgets })]))).toEqual([]);
  });

  it("reports every repeat of an id within a tenant against its first use", () => {
    const ds = duplicateBudgetId.check(policy([tenant("a"), tenant("b", { budgets: [budget("x"), budget("y"), budget("x"), budget("x")] })]));
    expect(ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`)).toEqual([
      'FE2602 tenants[1].budgets[2].id: duplicates tenants[1].budgets[0].id "x" (budget ids must be unique within a tenant)',
      'FE2602 tenants[1].budgets[3].id: duplicates tenants[1].budgets[0].id "x" (budget ids must be unique within a tenant)',
    ]);
  });
});
