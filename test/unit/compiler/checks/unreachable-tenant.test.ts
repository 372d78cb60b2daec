import { describe, expect, it } from "vitest";
import { unreachableTenant } from "../../../../compiler/checks/unreachable-tenant.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2105 unreachable-tenant", () => {
  it("accepts a tenant reachable by any mode in the default order", () => {
    const p = policy([tenant("a"), tenant("b", { pathPrefix: undefined, hosts: ["b.test"] }), tenant("c", { pathPrefix: undefined, headerValue: "c" })]);
    expect(unreachableTenant.check(p)).toEqual([]);
  });

  it("reports a tenant with no selector at all", () => {
    const ds = unreachableTenant.check(policy([tenant("a", { pathPrefix: undefined })]));
    expect(ds).toHaveLength(1);
    expect(ds[0]?.path).toBe("tenants[0]");
    expect(ds[0]?.hint).toContain("pathPrefix");
  });

  it("reports a selector whose mode is not in resolution.order, and says which", () => {
    const ds = unreachableTenant.check(policy([tenant("a", { pathPrefix: undefined, hosts: ["a.test"] })], { resolution: { order: ["path", "header"] } }));
    expect(ds).toHaveLength(1);
    expect(ds[0]?.hint).toContain('lacks "host"');
  });

  it("does not count the claim mode as a way in", () => {
    expect(unreachableTenant.check(policy([tenant("a", { pathPrefix: undefined })], { resolution: { order: ["claim"] } }))).toHaveLength(1);
  });
});
