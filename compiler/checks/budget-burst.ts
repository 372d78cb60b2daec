import { INTERACTION_CLASSES, type BudgetProps, type Interaction, type InteractionClass, type RouteMatchProps, type TenantProps } from "../../policy-dsl/index.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { budgetBurst as burstOf, lowerCosts, type CostsIR } from "../ir.ts";
import type { Check } from "./types.ts";

/**
 * What a request may be charged besides the five classes: metadata and smart-configuration have
 * no class (the runtime calls it "none"), so only a budget without `classes` sees a route cost
 * put on them.
 */
type Charged = InteractionClass | "none";

/** As lua-plugins/fhir/cost.ts groups the classifier's interactions. */
const CLASS_OF: Record<Interaction, Charged | "op"> = {
  "read": "read", "vread": "read", "history-instance": "read",
  "search-type": "search", "search-system": "search", "search-compartment": "search",
  "history-type": "search", "history-system": "search",
  "create": "write", "update": "write", "patch": "write", "delete": "write", "batch": "write", "transaction": "write",
  "operation-system": "op", "operation-type": "op", "operation-instance": "op",
  "capabilities": "none", "smart-configuration": "none",
};

/** The most one request of the class can cost by the model; `what` names it for the message. */
function classCost(k: InteractionClass, c: CostsIR): { cost: number; what: string } {
  switch (k) {
    case "read":
      return { cost: c.read, what: "a read" };
    case "search":
      return c.complex_search > c.search ? { cost: c.complex_search, what: "a search with _include, _revinclude, a chain or _has" } : { cost: c.search, what: "a search" };
    case "write":
      return { cost: c.write, what: "a write" };
    case "export": {
      const named = c.operations["$export"];
      return { cost: named ?? c.export, what: "an $export kick-off" };
    }
    case "operation": {
      let best = { cost: c.operation, what: "an operation" };
      for (const [name, cost] of Object.entries(c.operations)) {
        if (name !== "$export" && cost > best.cost) best = { cost, what: `a ${name} call` };
      }
      return best;
    }
  }
}

/**
 * The classes a route's match can fall in, as the runtime matches routes (core/gateway
 * firstMatch): given operations match only operation interactions, and name the class by
 * `$export` or not.
 */
function routeClasses(m: RouteMatchProps): Set<Charged> {
  const ops = m.operations;
  const opClasses: Charged[] = ops === undefined ? ["export", "operation"] : ops.map((o) => (o === "$export" ? "export" : "operation"));
  if (m.interactions === undefined) return new Set(ops === undefined ? [...INTERACTION_CLASSES, "none"] : opClasses);
  const out = new Set<Charged>();
  for (const i of m.interactions) {
    const k = CLASS_OF[i] as Charged | "op" | undefined;
    if (k === "op") opClasses.forEach((c) => out.add(c));
    else if (k !== undefined && ops === undefined) out.add(k);
  }
  return out;
}

/** The costliest single request a budget may have to admit, by the cost model and the routes. */
function costliest(t: TenantProps, b: BudgetProps, costs: CostsIR): { cost: number; what: string } {
  const applies = new Set<Charged>(b.classes === undefined ? [...INTERACTION_CLASSES, "none"] : b.classes);
  let best = { cost: 0, what: "" };
  for (const k of INTERACTION_CLASSES) {
    if (!applies.has(k)) continue;
    const c = classCost(k, costs);
    if (c.cost > best.cost) best = c;
  }
  for (const r of t.routes ?? []) {
    // A denied request is refused before it spends anything.
    if (r.cost === undefined || r.action === "deny" || r.cost <= best.cost) continue;
    for (const k of routeClasses(r.match)) {
      if (applies.has(k)) {
        best = { cost: r.cost, what: `a request on route ${JSON.stringify(r.id)}` };
        break;
      }
    }
  }
  return best;
}

/** A given burst the schema takes; anything else is the schema's error, not this rule's. */
function usableBurst(b: BudgetProps): boolean {
  if (b.burst !== undefined) return Number.isInteger(b.burst.tokens) && b.burst.tokens >= 1;
  return typeof b.rate?.tokens === "number" && b.rate.tokens > 0 && typeof b.rate.perMs === "number" && b.rate.perMs >= 1;
}

/**
 * A bucket never holds more than its burst, so a request that costs more is refused every
 * time (a 403 too-costly at run time). Only the bounded costs are checked here: a `_count`
 * surcharge and a batch's sum grow with the request, and the runtime refuses those alone.
 */
export const budgetBurst: Check = {
  code: "FE2601",
  name: "budget-burst",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const costs = lowerCosts(policy.costs, t.costs);
      (t.budgets ?? []).forEach((b, j) => {
        if (!usableBurst(b)) return;
        const burst = burstOf(b);
        const need = costliest(t, b, costs);
        if (need.cost <= burst) return;
        const given = b.burst === undefined ? `the default burst (ten seconds of rate), ${burst},` : `burst ${burst}`;
        const msg = `${given} is less than the ${need.cost} cost tokens of ${need.what}: the budget could never admit it`;
        out.push(diag("FE2601", `tenants[${i}].budgets[${j}].burst`, msg, `tokens(${need.cost}) or more`));
      });
    });
    return out;
  },
};
