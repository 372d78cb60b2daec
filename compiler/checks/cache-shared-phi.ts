import { patientCompartment } from "../fhir-data.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/**
 * A shared type is cached once for the whole tenant: every user and patient gets the same
 * entry. A type in the Patient compartment holds patient data, so sharing it would serve one
 * patient's record to another.
 */
export const cacheSharedPhi: Check = {
  code: "FE2702",
  name: "cache-shared-phi",
  check(policy) {
    const compartment = patientCompartment();
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      (t.cache?.shared ?? []).forEach((rt, k) => {
        if (rt !== "Patient" && compartment[rt] === undefined) return;
        out.push(diag("FE2702", `tenants[${i}].cache.shared[${k}]`, `${rt} is in the Patient compartment and holds patient data: it cannot be cached tenant-wide`, "leave it out of shared: it is then cached per patient or user"));
      });
    });
    return out;
  },
};
