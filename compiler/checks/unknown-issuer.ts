import { diag, type Diagnostic } from "../diagnostics.ts";
import { closest } from "./suggest.ts";
import type { Check } from "./types.ts";

export const unknownIssuer: Check = {
  code: "FE2502",
  name: "unknown-issuer",
  check(policy) {
    const out: Diagnostic[] = [];
    const known = (policy.issuers ?? []).map((s) => s.id);
    policy.tenants.forEach((t, i) => {
      (t.issuers ?? []).forEach((id, j) => {
        if (known.includes(id)) return;
        const near = closest(id, known);
        out.push(diag("FE2502", `tenants[${i}].issuers[${j}]`, `names no issuer: ${JSON.stringify(id)}`, near === undefined ? `declare it under issuers (known: ${known.join(", ") || "none"})` : `did you mean ${JSON.stringify(near)}?`));
      });
    });
    return out;
  },
};
