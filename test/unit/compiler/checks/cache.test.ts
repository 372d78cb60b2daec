import { describe, expect, it } from "vitest";
import { cacheMissBudgetBurst } from "../../../../compiler/checks/cache-miss-budget-burst.ts";
import { cacheSharedPhi } from "../../../../compiler/checks/cache-shared-phi.ts";
import { cacheSharedTtl } from "../../../../compiler/checks/cache-shared-ttl.ts";
import { cacheTypeUnknown } from "../../../../compiler/checks/cache-type-unknown.ts";
import { budgetKeyAnonymous } from "../../../../compiler/checks/budget-key-anonymous.ts";
import { perMinute, seconds, tokens, type TenantCacheProps } from "../../../../policy-dsl/index.ts";
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

describe("FE2702 cache-shared-phi", () => {
  it("refuses to share a type of the Patient compartment, and Patient itself", () => {
    expect(lines(cacheSharedPhi, { ttl: { Observation: seconds(5), Patient: seconds(5), ValueSet: seconds(5) }, shared: ["ValueSet", "Observation", "Patient"] })).toEqual([
      "FE2702 tenants[1].cache.shared[1]: Observation is in the Patient compartment and holds patient data: it cannot be cached tenant-wide (leave it out of shared: it is then cached per patient or user)",
      "FE2702 tenants[1].cache.shared[2]: Patient is in the Patient compartment and holds patient data: it cannot be cached tenant-wide (leave it out of shared: it is then cached per patient or user)",
    ]);
  });
});

describe("FE2703 cache-shared-ttl", () => {
  it("reports a shared type that has no TTL", () => {
    expect(lines(cacheSharedTtl, { ttl: { ValueSet: seconds(5) }, shared: ["ValueSet", "CodeSystem"] })).toEqual([
      "FE2703 tenants[1].cache.shared[1]: CodeSystem is shared but has no TTL, so it is never cached (give it one in cache.ttl: { CodeSystem: seconds(300) })",
    ]);
  });
});

describe("FE2704 cache-miss-budget-burst", () => {
  it("accepts a burst that pays for a complex search", () => {
    expect(lines(cacheMissBudgetBurst, { ttl: { ValueSet: seconds(5) }, missBudget: { id: "m", rate: perMinute(60), burst: tokens(5) } })).toEqual([]);
  });
  it("reports a burst below the dearest cacheable request", () => {
    expect(lines(cacheMissBudgetBurst, { ttl: { ValueSet: seconds(5) }, missBudget: { id: "m", rate: perMinute(60), burst: tokens(4) } })).toEqual([
      "FE2704 tenants[1].cache.missBudget.burst: a burst of 4 cannot pay for one cacheable request, which costs up to 5 (tokens(5) or more)",
    ]);
  });
});

describe("FE2604 on a miss budget", () => {
  it("reports a miss budget keyed by a token's value on an anonymous tenant", () => {
    expect(lines(budgetKeyAnonymous, { ttl: { ValueSet: seconds(5) }, missBudget: { id: "m", per: ["client_id"], rate: perMinute(60) } }, { anonymous: true, issuers: undefined })).toEqual([
      'FE2604 tenants[1].cache.missBudget.per[0]: "client_id" comes from a token, and the anonymous tenant has none: the budget would never apply (key it by "tenant" or "class", or give the tenant issuers)',
    ]);
  });
});
