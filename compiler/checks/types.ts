import type { PolicyInput } from "../../policy-dsl/index.ts";
import type { Diagnostic } from "../diagnostics.ts";

/** One semantic rule. `code` is stable: it is never reused or renumbered. */
export interface Check {
  readonly code: `FE2${number}`;
  readonly name: string;
  check(policy: PolicyInput): Diagnostic[];
}
