import { describe, expect, it } from "vitest";
import { cacheSharedTtl } from "../../../../compiler/checks/cache-shared-ttl.ts";
import { seconds, type TenantCacheProps } from "../../../../policy-dsl/index.ts";
import type { Check } from "../../../../compiler/checks/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const lines = (c: Check, cache: TenantCacheProps, extra: Record<string, unknown> = {}): string[] =>
  c.check(policy([tenant("a"), tenant("b", { cache, ...extra })])).map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);

describe("FE2703 cache-shared-ttl", () => {
  it("reports a shared type that has no TTL", () => {
    expect(lines(cacheSharedTtl, { ttl: { ValueSet: seconds(5) }, shared: ["ValueSet", "CodeSystem"] })).toEqual([
      "FE2703 tenants[1].cache.shared[1]: CodeSystem is shared but has no TTL, so it is never cached (give it one in cache.ttl: { CodeSystem: seconds(300) })",
    ]);
  });
});
