import { describe, expect, it } from "vitest";
import { cacheTypeUnknown } from "../../../../compiler/checks/cache-type-unknown.ts";
import { seconds, type TenantCacheProps } from "../../../../policy-dsl/index.ts";
import type { Check } from "../../../../compiler/checks/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const lines = (c: Check, cache: TenantCacheProps, extra: Record<string, unknown> = {}): string[] =>
  c.check(policy([tenant("a"), tenant("b", { cache, ...extra })])).map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);

describe("FE2701 cache-type-unknown", () => {
  it("accepts R4 types and metadata", () => {
    expect(lines(cacheTypeUnknown, { ttl: { ValueSet: seconds(60), metadata: seconds(60), Observation: seconds(5) }, shared: ["ValueSet"] })).toEqual([]);
  });
  it("reports a misspelt type in ttl and shared, with the near name", () => {
    expect(lines(cacheTypeUnknown, { ttl: { Valueset: seconds(60) }, shared: ["CodeSytem"] })).toEqual([
      'FE2701 tenants[1].cache.ttl.Valueset: "Valueset" is not an R4 resource type or "metadata" (did you mean "ValueSet"?)',
      'FE2701 tenants[1].cache.shared[0]: "CodeSytem" is not an R4 resource type or "metadata" (did you mean "CodeSystem"?)',
    ]);
  });
});
