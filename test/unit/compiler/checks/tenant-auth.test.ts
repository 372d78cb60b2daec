import { describe, expect, it } from "vitest";
import { tenantAuth } from "../../../../compiler/checks/tenant-auth.ts";
import type { Diagnostic } from "../../../../compiler/diagnostics.ts";
import { issuer, policy, tenant } from "../policy-builders.ts";

const lines = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);

describe("FE2501 tenant-auth", () => {
  it("accepts a tenant with issuers and a tenant that says anonymous: true", () => {
    const p = policy([tenant("a", { anonymous: undefined, issuers: ["idp"] }), tenant("b", { anonymous: true })], { issuers: [issuer("idp")] });
    expect(tenantAuth.check(p)).toEqual([]);
  });

  it("refuses a tenant with neither issuers nor anonymous, and one with empty issuers", () => {
    const p = policy([tenant("a"), tenant("b", { anonymous: undefined }), tenant("c", { anonymous: false, issuers: [] })]);
    expect(lines(tenantAuth.check(p))).toEqual([
      "FE2501 tenants[1].issuers: is required: the tenant accepts no tokens (name the issuers whose tokens it accepts, or set `anonymous: true` to serve it without tokens)",
      "FE2501 tenants[2].issuers: is required: the tenant accepts no tokens (name the issuers whose tokens it accepts, or set `anonymous: true` to serve it without tokens)",
    ]);
  });

  it("refuses a tenant that both names issuers and says anonymous: true", () => {
    const p = policy([tenant("a", { issuers: ["idp"], anonymous: true })], { issuers: [issuer("idp")] });
    expect(lines(tenantAuth.check(p))).toEqual(["FE2501 tenants[0].anonymous: contradicts tenants[0].issuers (a tenant either requires tokens (issuers) or does not (anonymous))"]);
  });
});
