import { DEFAULTS, type ResolutionMode, type TenantProps } from "../../policy-dsl/index.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

const SELECTOR: Record<Exclude<ResolutionMode, "claim">, { field: string; has: (t: TenantProps) => boolean }> = {
  host: { field: "hosts", has: (t) => (t.hosts ?? []).length > 0 },
  path: { field: "pathPrefix", has: (t) => t.pathPrefix !== undefined },
  header: { field: "headerValue", has: (t) => t.headerValue !== undefined },
};

/**
 * A tenant needs a selector whose mode is in `resolution.order`, or no request can reach it.
 * The claim mode does not count: it needs an identity, so an anonymous request (and any route
 * the operator wants open, like the capability statement) would have no way in.
 */
export const unreachableTenant: Check = {
  code: "FE2105",
  name: "unreachable-tenant",
  check(policy) {
    const order = policy.resolution?.order ?? DEFAULTS.resolution.order;
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const usable = order.some((m) => m !== "claim" && SELECTOR[m].has(t));
      if (usable) return;
      const unused = (Object.keys(SELECTOR) as (keyof typeof SELECTOR)[]).filter((m) => SELECTOR[m].has(t));
      const hint =
        unused.length > 0
          ? `it sets ${unused.map((m) => SELECTOR[m].field).join(", ")} but resolution.order ${JSON.stringify(order)} lacks ${unused.map((m) => JSON.stringify(m)).join(", ")}`
          : "set pathPrefix, hosts or headerValue";
      out.push(diag("FE2105", `tenants[${i}]`, `tenant ${JSON.stringify(t.id)} cannot be selected by any resolution mode in use`, hint));
    });
    return out;
  },
};
