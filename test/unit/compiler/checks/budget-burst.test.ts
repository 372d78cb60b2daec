import { describe, expect, it } from "vitest";
import { budgetBurst } from "../../../../compiler/checks/budget-burst.ts";
import { perMinute, perSecond, tokens, type BudgetProps, type CostProps, type PolicyInput, type RouteProps } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const withBudget = (b: Omit<BudgetProps, "id" | "rate"> & { rate?: BudgetProps["rate"] }, extra: { costs?: CostProps; routes?: RouteProps[]; policyCosts?: CostProps } = {}): PolicyInput =>
  policy([tenant("a", { budgets: [{ id: "b", rate: perMinute(600), ...b }], costs: extra.costs, routes: extra.routes })], extra.policyCosts === undefined ? {} : { costs: extra.policyCosts });

/** The burst each finding asks for, or [] when the budget passes. */
const needs = (p: PolicyInput): string[] => budgetBurst.check(p).map((d) => d.hint ?? "");

describe("FE2601 budget-burst", () => {
  it("accepts a burst that pays for one request of each class it applies to, at the boundary", () => {
    // The costliest default class is $export (10).
    expect(budgetBurst.check(withBudget({ burst: tokens(10) }))).toEqual([]);
    expect(budgetBurst.check(withBudget({ classes: ["read"], burst: tokens(1) }))).toEqual([]);
    expect(budgetBurst.check(withBudget({ classes: ["search"], burst: tokens(5) }))).toEqual([]);
    expect(budgetBurst.check(withBudget({ classes: ["write"], burst: tokens(2) }))).toEqual([]);
    expect(budgetBurst.check(withBudget({ classes: ["operation"], burst: tokens(5) }))).toEqual([]);
  });

  it("reports a burst one token short, with the path, the class and the burst it needs", () => {
    const ds = budgetBurst.check(withBudget({ classes: ["export"], burst: tokens(5) }));
    expect(ds).toHaveLength(1);
    expect(ds[0]).toEqual({
      code: "FE2601",
      path: "tenants[0].budgets[0].burst",
      message: "burst 5 is less than the 10 cost tokens of an $export kick-off: the budget could never admit it",
      hint: "tokens(10) or more",
    });
    expect(needs(withBudget({ burst: tokens(9) }))).toEqual(["tokens(10) or more"]);
    expect(needs(withBudget({ classes: ["read", "write"], burst: tokens(1) }))).toEqual(["tokens(2) or more"]);
  });

  it("takes the costliest form of each class: a complex search, the dearest named operation", () => {
    expect(needs(withBudget({ classes: ["search"], burst: tokens(4) }))).toEqual(["tokens(5) or more"]);
    expect(needs(withBudget({ classes: ["search"], burst: tokens(4) }, { costs: { search: 4, complexSearch: 2 } }))).toEqual([]);
    expect(needs(withBudget({ classes: ["search"], burst: tokens(4) }, { costs: { search: 6, complexSearch: 2 } }))).toEqual(["tokens(6) or more"]);
    const ops = { operations: { $everything: 30, $export: 50 } };
    // $export is the export class's, not the operation class's.
    expect(needs(withBudget({ classes: ["operation"], burst: tokens(29) }, { costs: ops }))).toEqual(["tokens(30) or more"]);
    expect(needs(withBudget({ classes: ["export"], burst: tokens(49) }, { costs: ops }))).toEqual(["tokens(50) or more"]);
    expect(budgetBurst.check(withBudget({ classes: ["operation"], burst: tokens(5) }, { costs: { operations: { $export: 50 } } }))).toEqual([]);
    expect(budgetBurst.check(withBudget({ classes: ["export"], burst: tokens(5) }, { costs: { export: 5 } }))).toEqual([]);
  });

  it("uses the tenant's effective cost model: the policy's costs, then the tenant's", () => {
    expect(needs(withBudget({ classes: ["read"], burst: tokens(2) }, { policyCosts: { read: 3 } }))).toEqual(["tokens(3) or more"]);
    expect(needs(withBudget({ classes: ["read"], burst: tokens(2) }, { policyCosts: { read: 3 }, costs: { read: 2 } }))).toEqual([]);
    expect(needs(withBudget({ classes: ["operation"], burst: tokens(9) }, { policyCosts: { operations: { $lastn: 10 } } }))).toEqual(["tokens(10) or more"]);
  });

  it("checks the default burst, ten seconds of rate rounded up", () => {
    // perMinute(30): 5 tokens in ten seconds, less than an $export.
    const ds = budgetBurst.check(withBudget({ rate: perMinute(30) }));
    expect(ds.map((d) => [d.path, d.message, d.hint])).toEqual([
      ["tenants[0].budgets[0].burst", "the default burst (ten seconds of rate), 5, is less than the 10 cost tokens of an $export kick-off: the budget could never admit it", "tokens(10) or more"],
    ]);
    expect(budgetBurst.check(withBudget({ rate: perMinute(60) }))).toEqual([]);
    expect(budgetBurst.check(withBudget({ rate: perSecond(0.5), classes: ["search"] }))).toEqual([]);
  });

  it("counts a route's own cost in the classes its match can fall in", () => {
    const route = (match: RouteProps["match"], cost = 40, action?: "deny"): RouteProps[] => [{ id: "dear", match, cost, ...(action === undefined ? {} : { action }) }];
    const reads = withBudget({ classes: ["read"], burst: tokens(10) }, { routes: route({ interactions: ["read"], resourceTypes: ["Binary"] }) });
    expect(budgetBurst.check(reads).map((d) => [d.message, d.hint])).toEqual([
      ['burst 10 is less than the 40 cost tokens of a request on route "dear": the budget could never admit it', "tokens(40) or more"],
    ]);
    // The route's match cannot be a search, so a search budget does not pay for it.
    expect(needs(withBudget({ classes: ["search"], burst: tokens(10) }, { routes: route({ interactions: ["read"] }) }))).toEqual([]);
    expect(needs(withBudget({ classes: ["write"], burst: tokens(10) }, { routes: route({ interactions: ["transaction"] }) }))).toEqual(["tokens(40) or more"]);
    expect(needs(withBudget({ classes: ["export"], burst: tokens(10) }, { routes: route({ operations: ["$export"] }) }))).toEqual(["tokens(40) or more"]);
    expect(needs(withBudget({ classes: ["operation"], burst: tokens(10) }, { routes: route({ operations: ["$export"] }) }))).toEqual([]);
    expect(needs(withBudget({ classes: ["operation"], burst: tokens(10) }, { routes: route({ operations: ["$everything"] }) }))).toEqual(["tokens(40) or more"]);
    expect(needs(withBudget({ classes: ["export"], burst: tokens(10) }, { routes: route({ interactions: ["operation-type"] }) }))).toEqual(["tokens(40) or more"]);
    // Operations only match operation interactions: a read with an operation list matches nothing.
    expect(needs(withBudget({ classes: ["read"], burst: tokens(10) }, { routes: route({ interactions: ["read"], operations: ["$everything"] }) }))).toEqual([]);
    // No interactions and no operations: every class.
    expect(needs(withBudget({ classes: ["read"], burst: tokens(10) }, { routes: route({ resourceTypes: ["Binary"] }) }))).toEqual(["tokens(40) or more"]);
    // metadata has no class: only a budget without classes sees a cost put on it.
    expect(needs(withBudget({ burst: tokens(10) }, { routes: route({ interactions: ["capabilities"] }) }))).toEqual(["tokens(40) or more"]);
    expect(needs(withBudget({ classes: ["read", "search", "write", "export", "operation"], burst: tokens(10) }, { routes: route({ interactions: ["capabilities"] }) }))).toEqual([]);
    // A denied request is refused before it spends anything.
    expect(needs(withBudget({ burst: tokens(10) }, { routes: route({}, 40, "deny") }))).toEqual([]);
    // A route that costs less than the model is no finding of its own.
    expect(needs(withBudget({ classes: ["export"], burst: tokens(9) }, { routes: route({ operations: ["$export"] }, 2) }))).toEqual(["tokens(10) or more"]);
  });

  it("reports each short budget of each tenant, and leaves malformed bursts to the schema", () => {
    const p = policy([
      tenant("a", { budgets: [{ id: "ok", rate: perMinute(600), burst: tokens(10) }, { id: "short", rate: perMinute(600), burst: tokens(3), classes: ["search"] }] }),
      tenant("b", { budgets: [{ id: "zero", rate: perMinute(600), burst: tokens(0) }, { id: "short", rate: perMinute(600), burst: tokens(1), classes: ["write"] }] }),
    ]);
    expect(budgetBurst.check(p).map((d) => d.path)).toEqual(["tenants[0].budgets[1].burst", "tenants[1].budgets[1].burst"]);
  });
});
