import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/**
 * Two tenants on one prefix, or one prefix inside another (`/acme` and `/acme/eu`), make the
 * tenant depend on prefix length rather than on what the operator meant. `/acme-eu` does not
 * overlap `/acme`: prefixes match whole path segments.
 */
export const pathPrefixOverlap: Check = {
  code: "FE2101",
  name: "path-prefix-overlap",
  check(policy) {
    const out: Diagnostic[] = [];
    const seen: { prefix: string; index: number }[] = [];
    policy.tenants.forEach((t, i) => {
      if (t.pathPrefix === undefined) return;
      const p = t.pathPrefix;
      // Against the first clash only: one finding per tenant is enough to act on.
      const s = seen.find((x) => x.prefix === p || p.startsWith(x.prefix + "/") || x.prefix.startsWith(p + "/"));
      if (s !== undefined) {
        const where = `tenants[${i}].pathPrefix`;
        if (s.prefix === p) {
          out.push(diag("FE2101", where, `duplicates tenants[${s.index}].pathPrefix ${JSON.stringify(p)}`, "give each tenant its own prefix"));
        } else {
          out.push(
            diag("FE2101", where, `${JSON.stringify(p)} overlaps tenants[${s.index}].pathPrefix ${JSON.stringify(s.prefix)}`, "prefixes must not nest; use sibling prefixes such as /acme and /acme-eu"),
          );
        }
      }
      seen.push({ prefix: p, index: i });
    });
    return out;
  },
};
