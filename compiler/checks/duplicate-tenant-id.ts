import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** Tenant ids name nginx upstream blocks, metrics labels and audit streams, so they must be unique. */
export const duplicateTenantId: Check = {
  code: "FE2102",
  name: "duplicate-tenant-id",
  check(policy) {
    const out: Diagnostic[] = [];
    const first = new Map<string, number>();
    policy.tenants.forEach((t, i) => {
      const prev = first.get(t.id);
      if (prev === undefined) first.set(t.id, i);
      else out.push(diag("FE2102", `tenants[${i}].id`, `duplicates tenants[${prev}].id ${JSON.stringify(t.id)}`, "tenant ids must be unique, including tenants from tenants/*.yaml"));
    });
    return out;
  },
};
