import { describe, expect, it } from "vitest";
import { formatDiagnostic } from "../../../compiler/diagnostics.ts";
import { validatePolicy } from "../../../compiler/validate.ts";
import { policy, tenant } from "./policy-builders.ts";

describe("validatePolicy", () => {
  it("returns the policy when there is nothing to report", () => {
    const p = policy([tenant("acme"), tenant("globex")]);
    expect(validatePolicy(p)).toEqual({ policy: p, diagnostics: [] });
  });

  it("reports schema and semantic problems together", () => {
    const p = policy([tenant("acme"), tenant("acme", { upstream: { url: "ftp://x" } }), tenant("globex", { pathPrefix: "/acme" })]);
    const ds = validatePolicy(p).diagnostics.map((d) => `${d.code} ${d.path}`);
    expect(ds).toEqual(["FE2101 tenants[1].pathPrefix", "FE2101 tenants[2].pathPrefix", "FE2102 tenants[1].id", "FE2201 tenants[1].upstream.url"]);
  });

  it("does not pile a rule's finding on a value the schema already rejected", () => {
    const bad = { name: "p", tenants: [{ id: "a", pathPrefix: "/a", upstream: { url: 5 }, anonymous: true }] };
    const ds = validatePolicy(bad).diagnostics;
    expect(ds.map((d) => d.code)).toEqual(["FE1003"]);
  });

  it("tags diagnostics of YAML tenants with their file", () => {
    const p = policy([tenant("acme"), tenant("acme", { pathPrefix: "/b" })]);
    const ds = validatePolicy(p, [undefined, "tenants/b.yaml"]).diagnostics;
    expect(ds.map(formatDiagnostic)).toEqual(['FE2102 tenants[1].id [tenants/b.yaml]: duplicates tenants[0].id "acme" (hint: tenant ids must be unique, including tenants from tenants/*.yaml)']);
  });

  it("reports a non-object policy without throwing", () => {
    expect(validatePolicy(42).diagnostics.map((d) => d.code)).toEqual(["FE1003"]);
  });
});
