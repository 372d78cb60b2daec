import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

const NAME = /^\$[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** The classifier reports operations with their `$`; without it a route would never match. */
export const operationName: Check = {
  code: "FE2304",
  name: "operation-name",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      (t.routes ?? []).forEach((r, j) => {
        (r.match.operations ?? []).forEach((op, k) => {
          if (NAME.test(op)) return;
          const hint = op.startsWith("$") ? "letters, digits, - and _ after the $" : `write ${JSON.stringify("$" + op)}`;
          out.push(diag("FE2304", `tenants[${i}].routes[${j}].match.operations[${k}]`, `${JSON.stringify(op)} is not an operation name`, hint));
        });
      });
    });
    return out;
  },
};
