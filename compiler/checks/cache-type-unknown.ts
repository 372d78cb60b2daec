import { r4ResourceTypes } from "../fhir-data.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { closest } from "./suggest.ts";
import type { Check } from "./types.ts";

/** A misspelt type in a cache would cache nothing, silently. */
export const cacheTypeUnknown: Check = {
  code: "FE2701",
  name: "cache-type-unknown",
  check(policy) {
    const known = [...r4ResourceTypes(), "metadata"];
    const set = new Set(known);
    const out: Diagnostic[] = [];
    const report = (path: string, rt: string): void => {
      if (set.has(rt)) return;
      const near = closest(rt, known);
      out.push(diag("FE2701", path, `${JSON.stringify(rt)} is not an R4 resource type or "metadata"`, near === undefined ? "resource types are case-sensitive R4 names such as ValueSet" : `did you mean ${JSON.stringify(near)}?`));
    };
    policy.tenants.forEach((t, i) => {
      const c = t.cache;
      if (c === undefined) return;
      for (const rt of Object.keys(c.ttl)) report(`tenants[${i}].cache.ttl.${rt}`, rt);
      (c.shared ?? []).forEach((rt, k) => report(`tenants[${i}].cache.shared[${k}]`, rt));
    });
    return out;
  },
};
