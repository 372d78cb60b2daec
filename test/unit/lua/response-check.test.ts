/**
 * scopes/response under LuaJIT, with the paths the compiler derives from the R4 definitions:
 * does a fetched resource lie in the patient's compartment, and does it satisfy a granular
 * scope's constraints?
 */
import { describe, expect, it } from "vitest";
import { patientCompartmentPaths, tokenParamPaths } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const PATHS = patientCompartmentPaths();
const TOKENS = tokenParamPaths();
const LAB = { system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "laboratory" };
const obs = (over: Record<string, unknown>): Record<string, unknown> => ({ resourceType: "Observation", id: "o1", status: "final", subject: { reference: "Patient/123" }, category: [{ coding: [LAB] }], ...over });

async function inCompartment(cases: [Record<string, unknown>, string][]): Promise<boolean[]> {
  const got = await runLua("scopes.response", "inCompartment", cases.map(([r, t]) => [r, t, "123", PATHS]));
  return got.map((g) => (g.ok ? (g.values[0] as boolean) : (() => { throw new Error(g.error); })()));
}

async function granular(cases: [Record<string, unknown>, [string, string][]][]): Promise<boolean[]> {
  const got = await runLua("scopes.response", "satisfiesGranular", cases.map(([r, params]) => [r, String(r["resourceType"]), [{ mask: 2, params }], TOKENS]));
  return got.map((g) => (g.ok ? (g.values[0] as boolean) : (() => { throw new Error(g.error); })()));
}

describe("inCompartment", () => {
  it("finds the patient through any compartment path, and nothing else", async () => {
    expect(
      await inCompartment([
        [obs({}), "Observation"],
        [obs({ subject: { reference: "Patient/123/_history/2" } }), "Observation"],
        [obs({ subject: { reference: "Group/1" }, performer: [{ reference: "Practitioner/9" }, { reference: "Patient/123" }] }), "Observation"],
        [obs({ subject: { reference: "Patient/456" } }), "Observation"],
        [obs({ subject: { reference: "Patient/1234" } }), "Observation"],
        [obs({ subject: { reference: "http://evil/Patient/123" } }), "Observation"],
        [obs({ subject: { display: "Patient/123" } }), "Observation"],
        [obs({ subject: undefined }), "Observation"],
        [obs({}), "Condition"],
        [{ resourceType: "Condition", subject: { reference: "Patient/123" } }, "Condition"],
        [{ resourceType: "Patient", id: "123" }, "Patient"],
        [{ resourceType: "Patient", id: "456" }, "Patient"],
        [{ resourceType: "Medication", id: "m" }, "Medication"],
      ]),
    ).toEqual([true, true, true, false, false, false, false, false, false, true, true, false, false]);
  });
});

describe("satisfiesGranular", () => {
  it("checks token constraints on CodeableConcepts, codes and system|code, and fails closed otherwise", async () => {
    expect(
      await granular([
        [obs({}), [["category", "laboratory"]]],
        [obs({}), [["category", `${LAB.system}|laboratory`]]],
        [obs({}), [["category", "http://other|laboratory"]]],
        [obs({}), [["category", "vital-signs"]]],
        [obs({}), [["category", "vital-signs,laboratory"]]],
        [obs({}), [["category", "laboratory"], ["status", "final"]]],
        [obs({}), [["category", "laboratory"], ["status", "amended"]]],
        [obs({ category: undefined }), [["category", "laboratory"]]],
        [obs({}), [["date", "2020"]]],
        [obs({}), [["no-such-param", "x"]]],
      ]),
    ).toEqual([true, true, false, false, true, true, false, false, false, false]);
  });
});
