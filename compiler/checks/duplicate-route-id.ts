import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** Route ids label audit events and metrics; two routes with one id could not be told apart. */
export const duplicateRouteId: Check = {
  code: "FE2303",
  name: "duplicate-route-id",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const first = new Map<string, number>();
      (t.routes ?? []).forEach((r, j) => {
        const prev = first.get(r.id);
        if (prev === undefined) first.set(r.id, j);
        else out.push(diag("FE2303", `tenants[${i}].routes[${j}].id`, `duplicates tenants[${i}].routes[${prev}].id ${JSON.stringify(r.id)}`, "route ids must be unique within a tenant"));
      });
    });
    return out;
  },
};
