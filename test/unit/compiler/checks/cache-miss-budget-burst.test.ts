import { describe, expect, it } from "vitest";
import { cacheMissBudgetBurst } from "../../../../compiler/checks/cache-miss-budget-burst.ts";
import { perMinute, seconds, tokens, type TenantCacheProps } from "../../../../policy-dsl/index.ts";
import type { Check } from "../../../../compiler/checks/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const lines = (c: Check, cache: TenantCacheProps, extra: Record<string, unknown> = {}): string[] =>
  c.check(policy([tenant("a"), tenant("b", { cache, ...extra })])).map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);

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
