import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** Fail closed: a tenant serves without tokens only when the policy says so in as many words. */
export const tenantAuth: Check = {
  code: "FE2501",
  name: "tenant-auth",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const hasIssuers = (t.issuers ?? []).length > 0;
      if (!hasIssuers && t.anonymous !== true) {
        out.push(diag("FE2501", `tenants[${i}].issuers`, "is required: the tenant accepts no tokens", "name the issuers whose tokens it accepts, or set `anonymous: true` to serve it without tokens"));
      } else if (hasIssuers && t.anonymous === true) {
        out.push(diag("FE2501", `tenants[${i}].anonymous`, "contradicts tenants[" + i + "].issuers", "a tenant either requires tokens (issuers) or does not (anonymous)"));
      }
    });
    return out;
  },
};
