/**
 * The patient compartment on the request side (issue #5; not wired yet). Pure.
 *
 * Under a `patient/` scope, a search on a compartment type must name exactly the patient in
 * context through the type's compartment parameters (derived at build time from the R4
 * CompartmentDefinition and search parameters: compiler/fhir-data.ts). These all name patient
 * 123 on Observation: `patient=123`, `patient=Patient/123`, `subject=Patient/123`,
 * `subject:Patient=123`, and the same on Condition and every type whose `patient` is its
 * subject restricted to Patient (a `typed` subject: a bare `subject=123` may be a Group). Anything that could reach past the compartment is refused: another
 * patient, a second value, no patient at all, chains, `_has`, other modifiers, and
 * `_include`/`_revinclude` that would pull in resources outside it.
 */
export type CompartmentKinds = LuaTable<string, "patient" | "typed">;
export type CompartmentTable = LuaTable<string, CompartmentKinds>;
/** Resource type -> compartment parameter -> the element it searches (parameters on one element are one). */
export type ElementTable = LuaTable<string, LuaTable<string, string>>;
/** Query parameters: name (with any modifier) -> values in request order. */
export type SearchArgs = Record<string, string[]>;

export type CompartmentError = "not_compartment" | "no_patient" | "other_patient" | "chain" | "has" | "modifier" | "include";

const find = string.find;
const sub = string.sub;
const match = string.match;

function isId(s: string): boolean {
  const [m] = match(s, "^[%w%-%.]+$");
  return m !== undefined && s.length <= 64;
}

/** The patient id a value names, or undefined when it names anything else. */
function patientOf(value: string, kind: "patient" | "typed", typedModifier: boolean): string | undefined {
  if (sub(value, 1, 8) === "Patient/") {
    const id = sub(value, 9);
    return isId(id) ? id : undefined;
  }
  if ((kind === "patient" || typedModifier) && isId(value)) return value;
  return undefined;
}

/**
 * `Observation:patient[:Patient]`: included resources must be the patient (or in the
 * compartment). An `_include` follows its parameter on every match, so that parameter must be
 * one the search held to the patient: `Condition?asserter=Patient/A&_include=Condition:patient`
 * matches Conditions A asserted, and would include their subjects, other patients.
 */
function includeOk(value: string, type: string, comp: CompartmentTable, reverse: boolean, held: LuaTable<string, boolean>, elements: ElementTable): boolean {
  const [src, param, target] = match(value, "^([%a]+):([%w_%-]+):?([%a]*)$");
  if (src === undefined || param === undefined) return false;
  if (target !== undefined && target !== "" && target !== "Patient") return false;
  if (!reverse) {
    const kind = comp.get(type)?.get(param);
    const element = elements.get(type)?.get(param);
    if (element === undefined || held.get(element) !== true) return false;
    // A parameter that may point at other types too must say :Patient, or it pulls those in.
    return src === type && (kind === "patient" || (kind === "typed" && target === "Patient"));
  }
  // Resources of `src` whose `param` points at the matches: inside the compartment only when
  // the matches are the patient and `param` is one of src's compartment parameters.
  return type === "Patient" && comp.get(src)?.get(param) !== undefined;
}

/** Undefined when the search stays inside `patient`'s compartment. */
export function checkSearch(type: string, args: SearchArgs, patient: string, comp: CompartmentTable, elements: ElementTable): CompartmentError | undefined {
  const kinds = comp.get(type);
  if (kinds === undefined) return "not_compartment";
  let named = false;
  // The compartment elements the search holds to the patient; includes are checked against
  // them once every parameter has been read (pairs has no order).
  const held = new LuaTable<string, boolean>();
  let includes: string[] | undefined;
  let revincludes: string[] | undefined;
  for (const [name, values] of pairs(args)) {
    if (sub(name, 1, 4) === "_has") return "has";
    const [colon] = find(name, ":", 1, true);
    const base = colon === undefined ? name : sub(name, 1, colon - 1);
    const modifier = colon === undefined ? undefined : sub(name, colon + 1);
    if (base === "_include" || base === "_revinclude") {
      if (modifier !== undefined) return "include";
      if (base === "_include") includes = values;
      else revincludes = values;
      continue;
    }
    const [dot] = find(base, ".", 1, true);
    if (dot !== undefined) return "chain";
    const kind = kinds.get(base);
    if (kind === undefined) continue;
    if (modifier !== undefined && modifier !== "Patient") return "modifier";
    for (const v of values) {
      for (const [part] of string.gmatch(v, "[^,]+")) {
        if (part === undefined) continue;
        const id = patientOf(part, kind, modifier === "Patient");
        if (id !== patient) return "other_patient";
        named = true;
      }
      if (v === "") return "other_patient";
    }
    held.set(elements.get(type)?.get(base) ?? type + "#" + base, true);
  }
  if (!named) return "no_patient";
  if (includes !== undefined) for (const v of includes) if (!includeOk(v, type, comp, false, held, elements)) return "include";
  if (revincludes !== undefined) for (const v of revincludes) if (!includeOk(v, type, comp, true, held, elements)) return "include";
  return undefined;
}
