import { describe, expect, it } from "vitest";
import { duplicateTenantId } from "../../../../compiler/checks/duplicate-tenant-id.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2102 duplicate-tenant-id", () => {
  it("accepts distinct ids", () => {
    expect(duplicateTenantId.check(policy([tenant("acme"), tenant("globex")]))).toEqual([]);
  });

  it("reports every repeat against the first", () => {
    const ds = duplicateTenantId.check(policy([tenant("acme"), tenant("acme", { pathPrefix: "/x" }), tenant("acme", { pathPrefix: "/y" })]));
    expect(ds.map((d) => [d.code, d.path, d.message])).toEqual([
      ["FE2102", "tenants[1].id", 'duplicates tenants[0].id "acme"'],
      ["FE2102", "tenants[2].id", 'duplicates tenants[0].id "acme"'],
    ]);
  });
});
