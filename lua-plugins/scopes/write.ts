/**
 * The body of a write under `patient/` scopes (issue #16). Pure.
 *
 * Every compartment path of the resource type (from the R4 CompartmentDefinition, built into
 * fhir_r4.patient_paths) is looked at, not only `subject`: each reference there must name the
 * patient in context, or a resource of another type, or nothing. One that names another
 * patient (`performer: Patient/B`) would put the resource in B's compartment. One the gateway
 * cannot read for sure (an absolute URL, `urn:`, a `#contained` id, a logical reference by
 * identifier that may be a patient) is refused too: a missed check is a 403, never a leak.
 * Apart from Patient itself, at least one path must name the patient.
 */
type Json = Record<string, unknown>;

export type WriteBodyError = "wrong_type" | "not_patient" | "no_patient" | "other_patient" | "unchecked_reference";

export type WriteBodyVerdict = LuaMultiReturn<[undefined, undefined] | [WriteBodyError, string | undefined]>;

const match = string.match;

type RefKind = "self" | "other_patient" | "other_type" | "none" | "unchecked";

/** What one value at a compartment path names. */
function refKind(ref: unknown, patient: string, types: LuaTable<string, boolean>): RefKind {
  if (type(ref) !== "table") return "unchecked";
  const r = (ref as Json)["reference"];
  const t = (ref as Json)["type"];
  if (t !== undefined && typeof t !== "string") return "unchecked";
  if (r === undefined) {
    // A logical reference (identifier only) may name a patient; one typed as another type does not.
    if ((ref as Json)["identifier"] !== undefined && (t === undefined || t === "Patient")) return "unchecked";
    return "none";
  }
  if (typeof r !== "string") return "unchecked";
  let [rtype, id] = match(r, "^(%u%a*)/([%w%-%.]+)$");
  if (rtype === undefined) [rtype, id] = match(r, "^(%u%a*)/([%w%-%.]+)/_history/[%w%-%.]+$");
  if (rtype === undefined || id === undefined || id.length > 64) return "unchecked";
  if (t !== undefined && t !== rtype) return "unchecked";
  if (rtype === "Patient") return id === patient ? "self" : "other_patient";
  return types.get(rtype) === true ? "other_type" : "unchecked";
}

interface Scan {
  named: boolean;
  error: WriteBodyError | undefined;
}

/** Every value at `path` under `node`, fanning out through arrays; stops at the first error. */
function scan(node: unknown, path: readonly string[], i: number, patient: string, types: LuaTable<string, boolean>, s: Scan): void {
  if (node === undefined || s.error !== undefined) return;
  const isTable = type(node) === "table";
  if (isTable && (node as unknown[])[0] !== undefined) {
    for (const item of node as unknown[]) scan(item, path, i, patient, types, s);
    return;
  }
  if (i < path.length) {
    // An element on the way to a reference that is not an object is no FHIR the check can read.
    if (isTable) scan((node as Json)[path[i]!], path, i + 1, patient, types, s);
    else if (i > 0) s.error = "unchecked_reference";
    return;
  }
  const kind = refKind(node, patient, types);
  if (kind === "self") s.named = true;
  else if (kind === "other_patient" || kind === "unchecked") s.error = kind === "other_patient" ? "other_patient" : "unchecked_reference";
}

/**
 * Undefined when `resource` (the body of a create or update of `rtype`) stays in `patient`'s
 * compartment; otherwise the error and the path it was found at (`performer`, `link.other`).
 */
export function checkWriteBody(resource: Json, rtype: string, patient: string, paths: LuaTable<string, readonly (readonly string[])[]>, types: LuaTable<string, boolean>): WriteBodyVerdict {
  if (resource["resourceType"] !== rtype) return $multi("wrong_type", undefined);
  if (rtype === "Patient" && resource["id"] !== patient) return $multi("not_patient", undefined);
  const list = paths.get(rtype);
  if (list === undefined) return $multi("no_patient", undefined);
  const s: Scan = { named: rtype === "Patient", error: undefined };
  for (const path of list) {
    scan(resource, path, 0, patient, types, s);
    if (s.error !== undefined) return $multi(s.error, table.concat(path as string[], "."));
  }
  if (!s.named) return $multi("no_patient", undefined);
  return $multi(undefined, undefined);
}
