import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** A shared type without a TTL is never cached: the policy would say one thing and do another. */
export const cacheSharedTtl: Check = {
  code: "FE2703",
  name: "cache-shared-ttl",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const c = t.cache;
      (c?.shared ?? []).forEach((rt, k) => {
        if (c?.ttl[rt] !== undefined) return;
        out.push(diag("FE2703", `tenants[${i}].cache.shared[${k}]`, `${rt} is shared but has no TTL, so it is never cached`, `give it one in cache.ttl: { ${rt}: seconds(300) }`));
      });
    });
    return out;
  },
};
