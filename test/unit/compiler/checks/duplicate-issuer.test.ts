import { describe, expect, it } from "vitest";
import { duplicateIssuer } from "../../../../compiler/checks/duplicate-issuer.ts";
import type { Diagnostic } from "../../../../compiler/diagnostics.ts";
import { issuer, policy, tenant } from "../policy-builders.ts";

const lines = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);
const withIssuers = (id: string, ids: string[]) => tenant(id, { anonymous: undefined, issuers: ids });

describe("FE2503 duplicate-issuer", () => {
  it("accepts distinct ids, and one iss shared by issuers that no tenant uses together", () => {
    const shared = "http://127.0.0.1:8104/realm";
    const p = policy([withIssuers("a", ["one"]), withIssuers("b", ["two"])], { issuers: [issuer("one", { issuer: shared }), issuer("two", { issuer: shared, audiences: ["other"] })] });
    expect(duplicateIssuer.check(p)).toEqual([]);
  });

  it("refuses a repeated issuer id at the repeat, naming the first", () => {
    const p = policy([tenant("a")], { issuers: [issuer("idp"), issuer("other"), issuer("idp", { issuer: "http://127.0.0.1:9000" })] });
    expect(lines(duplicateIssuer.check(p))).toEqual(['FE2503 issuers[2].id: duplicates issuers[0].id "idp" (issuer ids must be unique)']);
  });

  it("refuses two issuers with one iss in the same tenant", () => {
    const shared = "http://127.0.0.1:8104/realm";
    const p = policy([tenant("z"), withIssuers("a", ["one", "two"])], { issuers: [issuer("one", { issuer: shared }), issuer("two", { issuer: shared })] });
    expect(lines(duplicateIssuer.check(p))).toEqual([`FE2503 tenants[1].issuers: issuers "one" and "two" share the iss "${shared}" (one set of settings per iss in a tenant)`]);
  });
});
