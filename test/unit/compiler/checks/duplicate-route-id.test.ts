import { describe, expect, it } from "vitest";
import { duplicateRouteId } from "../../../../compiler/checks/duplicate-route-id.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2303 duplicate-route-id", () => {
  it("allows the same route id in different tenants", () => {
    const r = [{ id: "no-export", match: { operations: ["$export"] }, action: "deny" as const }];
    expect(duplicateRouteId.check(policy([tenant("a", { routes: r }), tenant("b", { routes: r })]))).toEqual([]);
  });

  it("reports a repeated id within a tenant", () => {
    const ds = duplicateRouteId.check(policy([tenant("a", { routes: [{ id: "x", match: {} }, { id: "y", match: {} }, { id: "x", match: {} }] })]));
    expect(ds.map((d) => `${d.path}: ${d.message}`)).toEqual(['tenants[0].routes[2].id: duplicates tenants[0].routes[0].id "x"']);
  });
});
