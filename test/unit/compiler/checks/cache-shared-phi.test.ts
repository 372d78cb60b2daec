import { describe, expect, it } from "vitest";
import { cacheSharedPhi } from "../../../../compiler/checks/cache-shared-phi.ts";
import { seconds, type TenantCacheProps } from "../../../../policy-dsl/index.ts";
import type { Check } from "../../../../compiler/checks/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const lines = (c: Check, cache: TenantCacheProps, extra: Record<string, unknown> = {}): string[] =>
  c.check(policy([tenant("a"), tenant("b", { cache, ...extra })])).map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);

describe("FE2702 cache-shared-phi", () => {
  it("refuses to share a type of the Patient compartment, and Patient itself", () => {
    expect(lines(cacheSharedPhi, { ttl: { Observation: seconds(5), Patient: seconds(5), ValueSet: seconds(5) }, shared: ["ValueSet", "Observation", "Patient"] })).toEqual([
      "FE2702 tenants[1].cache.shared[1]: Observation is in the Patient compartment and holds patient data: it cannot be cached tenant-wide (leave it out of shared: it is then cached per patient or user)",
      "FE2702 tenants[1].cache.shared[2]: Patient is in the Patient compartment and holds patient data: it cannot be cached tenant-wide (leave it out of shared: it is then cached per patient or user)",
    ]);
  });
});
