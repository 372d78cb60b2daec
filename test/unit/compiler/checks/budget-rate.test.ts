import { describe, expect, it } from "vitest";
import { budgetRateCheck } from "../../../../compiler/checks/budget-rate.ts";
import { perHour, perMinute, perSecond, type BudgetProps } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const budget = (rate: BudgetProps["rate"]): BudgetProps => ({ id: "b", rate });

describe("FE2605 budget-rate", () => {
  it("allows rates up to a million cost tokens a second, in any unit", () => {
    const budgets = [budget(perSecond(1_000_000)), budget(perMinute(60_000_000)), budget(perHour(1))];
    expect(budgetRateCheck.check(policy([tenant("a", { budgets })]))).toEqual([]);
  });

  it("reports a faster rate at its path, with the most it may be", () => {
    const ds = budgetRateCheck.check(policy([tenant("a"), tenant("b", { budgets: [budget(perSecond(10)), budget(perSecond(1_000_001)), budget(perMinute(120_000_000))] })]));
    expect(ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`)).toEqual([
      "FE2605 tenants[1].budgets[1].rate: 1000001 cost tokens a second is more than the 1000000 a bucket counts exactly (perSecond(1000000) or less, or no budget)",
      "FE2605 tenants[1].budgets[2].rate: 2000000 cost tokens a second is more than the 1000000 a bucket counts exactly (perSecond(1000000) or less, or no budget)",
    ]);
  });
});
