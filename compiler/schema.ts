/**
 * JSON Schema validation (FE1xxx). ajv errors are turned into policy paths such as
 * `tenants[1].upstream.url`, one diagnostic per problem.
 */
import { createRequire } from "node:module";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { diag, joinPath, type Diagnostic } from "./diagnostics.ts";

const require = createRequire(import.meta.url);
const policySchema = require("../policy-dsl/schema/policy.schema.json") as Record<string, unknown>;
const tenantSchema = require("../policy-dsl/schema/tenant.schema.json") as Record<string, unknown>;

export const SCHEMA_CODES = {
  FE1001: "missing required property",
  FE1002: "unknown property",
  FE1003: "wrong type",
  FE1004: "value not allowed",
  FE1005: "bad format",
  FE1006: "out of range",
  FE1007: "bad list",
  FE1009: "other schema violation",
} as const;

let compiled: { policy: ValidateFunction; tenant: ValidateFunction } | undefined;

function validators(): { policy: ValidateFunction; tenant: ValidateFunction } {
  if (compiled !== undefined) return compiled;
  // verbose: parentSchema carries the `description` used in messages.
  const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
  ajv.addSchema(policySchema);
  ajv.addSchema(tenantSchema);
  const policy = ajv.getSchema(policySchema["$id"] as string);
  const tenant = ajv.getSchema(tenantSchema["$id"] as string);
  if (policy === undefined || tenant === undefined) throw new Error("policy schemas failed to compile");
  compiled = { policy, tenant };
  return compiled;
}

function pointerToParts(pointer: string): (string | number)[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

function unitHint(schemaPath: string): string | undefined {
  if (schemaPath.includes("/duration/")) return "seconds(n) or milliseconds(n)";
  if (schemaPath.includes("/size/")) return "kilobytes(n) or megabytes(n)";
  if (schemaPath.includes("/yamlDuration/")) return 'milliseconds as a number, or "250ms", "2s", "1.5m"';
  // `$defs/rate` has a `tokens` property of its own, so both are matched as whole defs.
  if (schemaPath.includes("/$defs/rate/")) return "perSecond(n), perMinute(n) or perHour(n)";
  if (schemaPath.includes("/$defs/tokens/")) return "tokens(n)";
  return undefined;
}

function toDiagnostic(e: ErrorObject, base: readonly (string | number)[]): Diagnostic | undefined {
  const parts = [...base, ...pointerToParts(e.instancePath)];
  const p = e.params as Record<string, unknown>;
  const hint = unitHint(e.schemaPath);
  switch (e.keyword) {
    case "required":
      return diag("FE1001", joinPath([...parts, String(p["missingProperty"])]), "is required", hint);
    case "additionalProperties":
      return diag("FE1002", joinPath([...parts, String(p["additionalProperty"])]), "is not a known property", hint);
    case "type":
      return diag("FE1003", joinPath(parts), `must be ${String(p["type"])}`, hint);
    case "enum":
      return diag("FE1004", joinPath(parts), `must be one of ${(p["allowedValues"] as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`);
    case "const":
      return diag("FE1004", joinPath(parts), `must be ${JSON.stringify(p["allowedValue"])}`);
    case "pattern":
    case "format":
    case "minLength":
    case "maxLength": {
      const schema = e.parentSchema as { description?: string } | undefined;
      const what = schema?.description ?? (e.keyword === "pattern" ? `match ${String(p["pattern"])}` : e.message ?? "");
      return diag("FE1005", joinPath(parts), `must be ${what}`, hint);
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return diag("FE1006", joinPath(parts), `must be ${String(p["comparison"])} ${String(p["limit"])}`, hint);
    case "minItems":
    case "maxItems":
      return diag("FE1007", joinPath(parts), e.keyword === "minItems" ? `must have at least ${String(p["limit"])} item(s)` : `must have at most ${String(p["limit"])} items`);
    case "uniqueItems":
      return diag("FE1007", joinPath(parts), `must not repeat items (items ${String(p["j"])} and ${String(p["i"])} are equal)`);
    case "oneOf": {
      const schema = e.parentSchema as { description?: string } | undefined;
      return diag("FE1003", joinPath(parts), `must be ${schema?.description ?? "one of the allowed forms"}`);
    }
    case "if":
      return undefined;
    default:
      return diag("FE1009", joinPath(parts), e.message ?? "is invalid", hint);
  }
}

function run(v: ValidateFunction, value: unknown, base: readonly (string | number)[]): Diagnostic[] {
  if (v(value)) return [];
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  // oneOf reports every branch; its own summary error already names the value.
  const errors = (v.errors ?? []).filter((e) => !(e.schemaPath.includes("/oneOf/") && e.keyword !== "oneOf"));
  for (const e of errors) {
    const d = toDiagnostic(e, base);
    if (d === undefined) continue;
    const key = `${d.code} ${d.path} ${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}

export function validatePolicySchema(value: unknown): Diagnostic[] {
  return run(validators().policy, value, []);
}

/** A `tenants/*.yaml` document, reported under the path it will have once merged. */
export function validateTenantYamlSchema(value: unknown, base: readonly (string | number)[]): Diagnostic[] {
  return run(validators().tenant, value, base);
}
