import { describe, expect, it } from "vitest";
import { breakGlassCheck } from "../../../../compiler/checks/break-glass.ts";
import type { BreakGlassProps } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const secured = (breakGlass: BreakGlassProps) => tenant("a", { anonymous: undefined, issuers: ["idp"], breakGlass });
const list = (ds: ReturnType<typeof breakGlassCheck.check>) => ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);

describe("FE2801 break-glass", () => {
  it("accepts a tenant with issuers, a scope of its own and resource scopes to add", () => {
    expect(breakGlassCheck.check(policy([secured({ reasons: ["emergency"], scopes: ["user/*.rs", "user/Observation.read", "patient/Condition.rs?category=x"] })]))).toEqual([]);
    expect(breakGlassCheck.check(policy([secured({ scope: "org:btg", reasons: ["emergency"] })], { audit: { keyFile: "k", durable: ["write", "break-glass"] } }))).toEqual([]);
  });

  it("refuses it on an anonymous tenant, which has no token to hold the scope", () => {
    expect(list(breakGlassCheck.check(policy([tenant("x"), tenant("y", { breakGlass: { reasons: ["emergency"] } })])))).toEqual([
      "FE2801 tenants[1].breakGlass: is set on an anonymous tenant, whose requests carry no token to hold the break-glass scope (give the tenant issuers, or remove breakGlass)",
    ]);
  });

  it("refuses a SMART scope as the eligibility scope, in any spelling", () => {
    for (const scope of ["user/*.rs", "patient%2FObservation.read", "launch/patient", "openid"]) {
      const ds = breakGlassCheck.check(policy([secured({ scope, reasons: ["emergency"] })]));
      expect(ds.map((d) => [d.code, d.path]), scope).toEqual([["FE2801", "tenants[0].breakGlass.scope"]]);
      expect(ds[0]?.message).toBe(`"${scope}" is a SMART scope: every token granted it could break glass`);
    }
  });

  it("reports each added scope that is not a resource scope, at its place", () => {
    expect(list(breakGlassCheck.check(policy([secured({ reasons: ["emergency"], scopes: ["user/*.rs", "launch", "user/Observation.xyz"] })])))).toEqual([
      'FE2801 tenants[0].breakGlass.scopes[1]: "launch" is not a SMART resource scope (write it as context/Type.permissions, such as "user/*.rs")',
      'FE2801 tenants[0].breakGlass.scopes[2]: "user/Observation.xyz" is not a SMART resource scope (write it as context/Type.permissions, such as "user/*.rs")',
    ]);
  });

  it("refuses a durable break-glass class when no tenant can break glass", () => {
    expect(list(breakGlassCheck.check(policy([tenant("a")], { audit: { keyFile: "k", durable: ["write", "break-glass"] } })))).toEqual([
      "FE2801 audit.durable[1]: names break-glass, and no tenant has breakGlass (give a tenant breakGlass, or remove the class)",
    ]);
  });
});
