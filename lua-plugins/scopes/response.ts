/**
 * Response-side checks for what the request alone cannot decide (issue #5). Pure.
 *
 * - A read by id under `patient/` scopes: the resource must reference the patient through
 *   one of its type's compartment paths (derived from the R4 definitions at build time).
 * - A read allowed only by granular scopes: the resource must satisfy every constraint of
 *   one of them. Constraints on token parameters with a plain element path are checkable
 *   (CodeableConcept, Coding, Identifier, code); anything else fails closed.
 *
 * Paths that are not on the resource, or constraints that cannot be evaluated, count as not
 * satisfied: a missed match is a 403, never a leak.
 */
import type { Granular } from "./scope";

type Json = Record<string, unknown>;

const find = string.find;
const sub = string.sub;

/** Every value at `path` under `node`, fanning out through arrays (a JSON array is a table with [1]). */
function collect(node: unknown, path: readonly string[], i: number, out: unknown[]): void {
  if (node === undefined || node === null) return;
  const isTable = type(node) === "table";
  if (isTable && (node as unknown[])[0] !== undefined) {
    for (const item of node as unknown[]) collect(item, path, i, out);
    return;
  }
  if (i >= path.length) {
    out.push(node);
    return;
  }
  if (!isTable) return;
  collect((node as Json)[path[i]!], path, i + 1, out);
}

function valuesAt(resource: Json, path: readonly string[]): unknown[] {
  const out: unknown[] = [];
  collect(resource, path, 0, out);
  return out;
}

function referencesPatient(ref: unknown, patient: string): boolean {
  if (type(ref) !== "table") return false;
  const r = (ref as Json)["reference"];
  if (typeof r !== "string") return false;
  if (r === "Patient/" + patient) return true;
  const prefix = "Patient/" + patient + "/_history/";
  return sub(r, 1, prefix.length) === prefix;
}

/** True when the resource of `type` references `patient` through a compartment path. */
export function inCompartment(resource: Json, type: string, patient: string, paths: LuaTable<string, readonly (readonly string[])[]>): boolean {
  if (resource["resourceType"] !== type) return false;
  if (type === "Patient") return resource["id"] === patient;
  const list = paths.get(type);
  if (list === undefined) return false;
  for (const path of list) {
    for (const v of valuesAt(resource, path)) if (referencesPatient(v, patient)) return true;
  }
  return false;
}

/** Does one token value (`code` or `system|code`) match a coded element? */
function tokenMatches(element: unknown, value: string): boolean {
  const [bar] = find(value, "|", 1, true);
  const system = bar === undefined ? undefined : sub(value, 1, bar - 1);
  const code = bar === undefined ? value : sub(value, bar + 1);
  if (typeof element === "string") return system === undefined && element === code;
  if (type(element) !== "table") return false;
  const e = element as Json;
  const codings = e["coding"];
  if (type(codings) === "table") {
    for (const c of codings as Json[]) if (tokenMatches(c, value)) return true;
    return false;
  }
  const own = e["code"] ?? e["value"];
  if (typeof own !== "string" || own !== code) return false;
  return system === undefined || e["system"] === system;
}

function constraintHolds(resource: Json, param: string, value: string, tokenPaths: LuaTable<string, readonly string[]> | undefined): boolean {
  const path = tokenPaths?.get(param);
  if (path === undefined) return false;
  for (const [v] of string.gmatch(value, "[^,]+")) {
    if (v === undefined) continue;
    for (const el of valuesAt(resource, path)) if (tokenMatches(el, v)) return true;
  }
  return false;
}

/** True when the resource satisfies every constraint of at least one of the granular grants. */
export function satisfiesGranular(resource: Json, type: string, grants: readonly Granular[], tokenPaths: LuaTable<string, LuaTable<string, readonly string[]>>): boolean {
  if (resource["resourceType"] !== type) return false;
  const paths = tokenPaths.get(type);
  for (const g of grants) {
    let all = true;
    for (const [param, value] of g.params) {
      if (!constraintHolds(resource, param, value, paths)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}
