import { r4ResourceTypes } from "../fhir-data.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { closest } from "./suggest.ts";
import type { Check } from "./types.ts";

/** A misspelt type would make a deny route match nothing, silently. */
export const unknownResourceType: Check = {
  code: "FE2301",
  name: "unknown-resource-type",
  check(policy) {
    const known = r4ResourceTypes();
    const set = new Set(known);
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      (t.routes ?? []).forEach((r, j) => {
        (r.match.resourceTypes ?? []).forEach((rt, k) => {
          if (set.has(rt)) return;
          const near = closest(rt, known);
          out.push(
            diag("FE2301", `tenants[${i}].routes[${j}].match.resourceTypes[${k}]`, `${JSON.stringify(rt)} is not an R4 resource type`, near === undefined ? "resource types are case-sensitive R4 names such as Patient" : `did you mean ${JSON.stringify(near)}?`),
          );
        });
      });
    });
    return out;
  },
};
