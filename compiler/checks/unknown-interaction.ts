import { INTERACTIONS } from "../../policy-dsl/index.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { closest } from "./suggest.ts";
import type { Check } from "./types.ts";

/** The schema takes any string here so that this rule can suggest the name that was meant. */
export const unknownInteraction: Check = {
  code: "FE2302",
  name: "unknown-interaction",
  check(policy) {
    const known: readonly string[] = INTERACTIONS;
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      (t.routes ?? []).forEach((r, j) => {
        (r.match.interactions ?? []).forEach((name: string, k) => {
          if (known.includes(name)) return;
          const near = closest(name, known);
          out.push(
            diag("FE2302", `tenants[${i}].routes[${j}].match.interactions[${k}]`, `${JSON.stringify(name)} is not a FHIR interaction`, near === undefined ? `one of ${known.join(", ")}` : `did you mean ${JSON.stringify(near)}?`),
          );
        });
      });
    });
    return out;
  },
};
