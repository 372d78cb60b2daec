import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/**
 * Issuer ids are unique. Within one tenant, `iss` values are unique too: a JWT is matched to
 * its issuer settings by `iss`, and two settings for one `iss` would make that ambiguous.
 */
export const duplicateIssuer: Check = {
  code: "FE2503",
  name: "duplicate-issuer",
  check(policy) {
    const out: Diagnostic[] = [];
    const issuers = policy.issuers ?? [];
    const ids = new Map<string, number>();
    issuers.forEach((s, i) => {
      const prev = ids.get(s.id);
      if (prev === undefined) ids.set(s.id, i);
      else out.push(diag("FE2503", `issuers[${i}].id`, `duplicates issuers[${prev}].id ${JSON.stringify(s.id)}`, "issuer ids must be unique"));
    });
    policy.tenants.forEach((t, i) => {
      const seen = new Map<string, string>();
      for (const id of t.issuers ?? []) {
        const iss = issuers.find((s) => s.id === id)?.issuer;
        if (iss === undefined) continue;
        const prev = seen.get(iss);
        if (prev !== undefined && prev !== id) {
          out.push(diag("FE2503", `tenants[${i}].issuers`, `issuers ${JSON.stringify(prev)} and ${JSON.stringify(id)} share the iss ${JSON.stringify(iss)}`, "one set of settings per iss in a tenant"));
        }
        seen.set(iss, id);
      }
    });
    return out;
  },
};
