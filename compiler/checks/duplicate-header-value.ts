import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

export const duplicateHeaderValue: Check = {
  code: "FE2104",
  name: "duplicate-header-value",
  check(policy) {
    const out: Diagnostic[] = [];
    const first = new Map<string, number>();
    policy.tenants.forEach((t, i) => {
      if (t.headerValue === undefined) return;
      const prev = first.get(t.headerValue);
      if (prev === undefined) first.set(t.headerValue, i);
      else out.push(diag("FE2104", `tenants[${i}].headerValue`, `duplicates tenants[${prev}].headerValue ${JSON.stringify(t.headerValue)}`, "a header value can select only one tenant"));
    });
    return out;
  },
};
