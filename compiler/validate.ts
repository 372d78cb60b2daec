/**
 * Validation in two steps, APISIX style: the JSON Schema first, then the semantic rules in
 * `checks/`. Every problem is reported in one pass.
 */
import type { PolicyInput } from "../policy-dsl/index.ts";
import { CHECKS, type Check } from "./checks/index.ts";
import type { Diagnostic } from "./diagnostics.ts";
import { validatePolicySchema } from "./schema.ts";

export interface ValidationResult {
  /** Set only when there are no diagnostics. */
  readonly policy: PolicyInput | undefined;
  readonly diagnostics: readonly Diagnostic[];
}

/** True when `path` is `base` or lies inside it (`tenants[1].upstream` is inside `tenants[1]`). */
function within(path: string, base: string): boolean {
  if (base === "") return true;
  return path === base || path.startsWith(base + ".") || path.startsWith(base + "[");
}

function runCheck(c: Check, policy: PolicyInput): Diagnostic[] {
  try {
    return c.check(policy);
  } catch {
    // Only reachable when the schema already failed: the rule met a shape it does not handle.
    return [];
  }
}

/**
 * `tenantSources[i]` names the YAML file tenant i came from (undefined for the policy file);
 * diagnostics under `tenants[i]` are tagged with it.
 */
export function validatePolicy(raw: unknown, tenantSources: readonly (string | undefined)[] = []): ValidationResult {
  const schemaDiags = validatePolicySchema(raw);
  const semantic: Diagnostic[] = [];
  const shapeOk = typeof raw === "object" && raw !== null && Array.isArray((raw as { tenants?: unknown }).tenants);
  if (shapeOk) {
    const policy = raw as PolicyInput;
    for (const c of CHECKS) {
      for (const d of runCheck(c, policy)) {
        // A rule's finding inside a value the schema rejected is noise on top of the real error.
        if (!schemaDiags.some((s) => within(d.path, s.path))) semantic.push(d);
      }
    }
  }
  const diagnostics = [...schemaDiags, ...semantic].map((d) => tagSource(d, tenantSources));
  return { policy: diagnostics.length === 0 ? (raw as PolicyInput) : undefined, diagnostics };
}

function tagSource(d: Diagnostic, sources: readonly (string | undefined)[]): Diagnostic {
  const m = /^tenants\[([0-9]+)\]/.exec(d.path);
  const src = m === null ? undefined : sources[Number(m[1])];
  return src === undefined || d.source !== undefined ? d : { ...d, source: src };
}
