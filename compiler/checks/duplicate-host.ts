import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** Host names compare case-insensitively, as the runtime lower-cases the Host header. */
export const duplicateHost: Check = {
  code: "FE2103",
  name: "duplicate-host",
  check(policy) {
    const out: Diagnostic[] = [];
    const first = new Map<string, string>();
    policy.tenants.forEach((t, i) => {
      (t.hosts ?? []).forEach((h, j) => {
        const key = h.toLowerCase();
        const where = `tenants[${i}].hosts[${j}]`;
        const prev = first.get(key);
        if (prev === undefined) first.set(key, where);
        else out.push(diag("FE2103", where, `duplicates ${prev} ${JSON.stringify(key)}`, "a host can select only one tenant"));
      });
    });
    return out;
  },
};
