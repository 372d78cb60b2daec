import { describe, expect, it } from "vitest";
import { unknownIssuer } from "../../../../compiler/checks/unknown-issuer.ts";
import type { Diagnostic } from "../../../../compiler/diagnostics.ts";
import { issuer, policy, tenant } from "../policy-builders.ts";

const lines = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);
const withIssuers = (ids: string[]) => tenant("a", { anonymous: undefined, issuers: ids });

describe("FE2502 unknown-issuer", () => {
  it("accepts tenants that name declared issuers", () => {
    const p = policy([withIssuers(["corp-idp", "partner"]), tenant("b", { anonymous: undefined, issuers: ["partner"] })], { issuers: [issuer("corp-idp"), issuer("partner")] });
    expect(unknownIssuer.check(p)).toEqual([]);
  });

  it("refuses an undeclared issuer at its place in the tenant's list, suggesting the nearest id", () => {
    const p = policy([tenant("z"), withIssuers(["corp-idp", "corp-ipd"])], { issuers: [issuer("corp-idp"), issuer("partner")] });
    expect(lines(unknownIssuer.check(p))).toEqual(['FE2502 tenants[1].issuers[1]: names no issuer: "corp-ipd" (did you mean "corp-idp"?)']);
  });

  it("lists the declared ids when none is near, and says none when there are none", () => {
    expect(lines(unknownIssuer.check(policy([withIssuers(["keycloak"])], { issuers: [issuer("corp-idp"), issuer("partner")] })))).toEqual([
      'FE2502 tenants[0].issuers[0]: names no issuer: "keycloak" (declare it under issuers (known: corp-idp, partner))',
    ]);
    expect(lines(unknownIssuer.check(policy([withIssuers(["keycloak"])])))).toEqual(['FE2502 tenants[0].issuers[0]: names no issuer: "keycloak" (declare it under issuers (known: none))']);
  });
});
