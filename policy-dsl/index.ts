/**
 * The operator API: `import { definePolicy, seconds } from "fhir-edge"` in gateway.policy.ts.
 * Everything here is plain data; the compiler validates it and applies the defaults.
 */
import type { PolicyInput } from "./types.ts";

export * from "./constants.ts";
export * from "./types.ts";
export { DEFAULTS } from "./defaults.ts";
export { kilobytes, megabytes, milliseconds, perHour, perMinute, perSecond, seconds, tokens } from "./units.ts";
export type { Duration, Rate, Size, Tokens } from "./units.ts";

/** Identity at run time; it exists so an editor checks the policy against {@link PolicyInput}. */
export function definePolicy(policy: PolicyInput): PolicyInput {
  return policy;
}
