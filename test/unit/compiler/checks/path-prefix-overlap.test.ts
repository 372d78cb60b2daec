import { describe, expect, it } from "vitest";
import { pathPrefixOverlap } from "../../../../compiler/checks/path-prefix-overlap.ts";
import { formatDiagnostic } from "../../../../compiler/diagnostics.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2101 path-prefix-overlap", () => {
  it("accepts sibling prefixes, including ones sharing a string prefix", () => {
    expect(pathPrefixOverlap.check(policy([tenant("acme"), tenant("acme-eu"), tenant("globex")]))).toEqual([]);
  });

  it("reports a duplicate prefix at the later tenant", () => {
    const ds = pathPrefixOverlap.check(policy([tenant("acme"), tenant("globex", { pathPrefix: "/acme" })]));
    expect(ds.map(formatDiagnostic)).toEqual(['FE2101 tenants[1].pathPrefix: duplicates tenants[0].pathPrefix "/acme" (hint: give each tenant its own prefix)']);
  });

  it("reports nested prefixes in either order", () => {
    const a = pathPrefixOverlap.check(policy([tenant("acme"), tenant("eu", { pathPrefix: "/acme/eu" })]));
    const b = pathPrefixOverlap.check(policy([tenant("eu", { pathPrefix: "/acme/eu" }), tenant("acme")]));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(a[0]?.message).toContain("overlaps");
  });

  it("ignores tenants without a prefix", () => {
    expect(pathPrefixOverlap.check(policy([tenant("a", { pathPrefix: undefined, hosts: ["a.test"] }), tenant("b", { pathPrefix: undefined, hosts: ["b.test"] })]))).toEqual([]);
  });
});
