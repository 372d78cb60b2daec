/**
 * scopes/write's checkWriteBody under LuaJIT, with the compartment paths and resource types
 * the compiler derives from the R4 definitions: a create or update under `patient/` scopes
 * must not put the resource in another patient's compartment through any path, and a
 * reference the gateway cannot read for sure is refused rather than guessed at.
 */
import { describe, expect, it } from "vitest";
import { patientCompartmentPaths, r4ResourceTypes } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const PATHS = patientCompartmentPaths();
const TYPES = Object.fromEntries(r4ResourceTypes().map((t) => [t, true]));
const PATIENT = "123";

type Json = Record<string, unknown>;
/** [error, path]; both undefined when the body is allowed. */
type Verdict = [string | undefined, string | undefined];
const OK: Verdict = [undefined, undefined];

async function check(cases: readonly [Json, string][], patient = PATIENT): Promise<Verdict[]> {
  const got = await runLua("scopes.write", "checkWriteBody", cases.map(([r, t]) => [r, t, patient, PATHS, TYPES]));
  return got.map((g, i) => {
    if (!g.ok) throw new Error(`case ${i} (${JSON.stringify(cases[i])}) raised: ${g.error}`);
    return [g.values[0], g.values[1]] as Verdict;
  });
}

const ref = (reference: string, more: Json = {}): Json => ({ reference, ...more });
const me = ref(`Patient/${PATIENT}`);
const obs = (over: Json): Json => ({ resourceType: "Observation", status: "final", code: { text: "x" }, subject: me, ...over });

describe("compartment data the checks rely on", () => {
  // If the derivation changes, the cases below would test other paths than they claim to.
  it("has the paths the cases are written against", () => {
    expect(PATHS["Observation"]).toEqual([["subject"], ["performer"]]);
    expect(PATHS["Encounter"]).toEqual([["subject"]]);
    expect(PATHS["Condition"]).toEqual([["subject"], ["asserter"]]);
    expect(PATHS["Patient"]).toEqual([["link", "other"]]);
    expect(PATHS["Procedure"]).toEqual([["subject"], ["performer", "actor"]]);
    expect(PATHS["CarePlan"]).toContainEqual(["activity", "detail", "performer"]);
    expect(PATHS["Medication"]).toBeUndefined();
    expect(TYPES["Practitioner"]).toBe(true);
    expect(TYPES["Foo"]).toBeUndefined();
  });
});

describe("resource type", () => {
  it("must be the type written", async () => {
    expect(await check([[obs({}), "Condition"], [{ ...obs({}), resourceType: undefined }, "Observation"], [{ resourceType: "observation", subject: me }, "Observation"]])).toEqual([
      ["wrong_type", undefined],
      ["wrong_type", undefined],
      ["wrong_type", undefined],
    ]);
  });

  it("without compartment paths can never name the patient", async () => {
    expect(await check([[{ resourceType: "Medication", id: "m" }, "Medication"], [{ resourceType: "Practitioner", id: "p" }, "Practitioner"]])).toEqual([
      ["no_patient", undefined],
      ["no_patient", undefined],
    ]);
  });
});

describe("Observation: subject and performer", () => {
  it("allows the patient, its history versions, other types and display-only references", async () => {
    expect(
      await check([
        [obs({}), "Observation"],
        [obs({ subject: ref(`Patient/${PATIENT}/_history/2`) }), "Observation"],
        [obs({ subject: ref(`Patient/${PATIENT}`, { type: "Patient", display: "Me" }) }), "Observation"],
        [obs({ performer: [ref("Practitioner/9"), ref("Organization/o-1.2"), ref("PractitionerRole/r", { type: "PractitionerRole" })] }), "Observation"],
        [obs({ performer: [{ display: "Dr. Who" }, { identifier: { system: "urn:npi", value: "1" }, type: "Practitioner" }] }), "Observation"],
        // The patient may be named by any path, not only subject.
        [obs({ subject: ref("Group/1"), performer: [ref("Practitioner/9"), me] }), "Observation"],
        [obs({ subject: undefined, performer: [me] }), "Observation"],
        [obs({ performer: [me, ref(`Patient/${PATIENT}/_history/7`)] }), "Observation"],
        [obs({ performer: [] }), "Observation"],
        // Non-compartment paths are the upstream's business, not the compartment's.
        [obs({ basedOn: [ref("http://elsewhere/ServiceRequest/1")], hasMember: [ref("Observation/x")] }), "Observation"],
      ]),
    ).toEqual(Array(10).fill(OK));
  });

  it("needs one path to name the patient", async () => {
    expect(
      await check([
        [obs({ subject: undefined }), "Observation"],
        [obs({ subject: ref("Group/1") }), "Observation"],
        [obs({ subject: { display: `Patient/${PATIENT}` } }), "Observation"],
        [obs({ subject: { type: "Patient" } }), "Observation"],
        [obs({ subject: ref("Device/d"), performer: [ref("Practitioner/9")] }), "Observation"],
      ]),
    ).toEqual(Array(5).fill(["no_patient", undefined]));
  });

  it("refuses another patient, by the path it was found at", async () => {
    expect(
      await check([
        [obs({ subject: ref("Patient/456") }), "Observation"],
        [obs({ subject: ref("Patient/1234") }), "Observation"],
        [obs({ subject: ref("Patient/12") }), "Observation"],
        [obs({ subject: ref("Patient/456/_history/1") }), "Observation"],
        [obs({ performer: [ref("Practitioner/9"), ref("Patient/456")] }), "Observation"],
        [obs({ performer: [me, ref("Patient/456")] }), "Observation"],
        [obs({ performer: ref("Patient/456") }), "Observation"],
        [obs({ subject: ref("Patient/456", { type: "Patient" }) }), "Observation"],
      ]),
    ).toEqual([
      ["other_patient", "subject"],
      ["other_patient", "subject"],
      ["other_patient", "subject"],
      ["other_patient", "subject"],
      ["other_patient", "performer"],
      ["other_patient", "performer"],
      ["other_patient", "performer"],
      ["other_patient", "subject"],
    ]);
  });

  it("refuses references it cannot read for sure", async () => {
    const long = "x".repeat(65);
    const cases: Json[] = [
      { subject: ref(`http://other.example/fhir/Patient/${PATIENT}`) },
      { subject: ref(`https://fhir.example/Patient/${PATIENT}`) },
      { subject: ref("urn:uuid:7f1c1e2e-0000-4000-8000-000000000000") },
      { subject: ref("#p1") },
      { subject: ref(`patient/${PATIENT}`) },
      { subject: ref(`Patient/${PATIENT}/`) },
      { subject: ref(`Patient/${PATIENT}/_history/`) },
      { subject: ref(`Patient/${PATIENT}/extra`) },
      { subject: ref(`Patient/${PATIENT}?x=1`) },
      { subject: ref("Patient/") },
      { subject: ref(`/Patient/${PATIENT}`) },
      { subject: ref(`Patient/${long}`) },
      { subject: { identifier: { system: "urn:mrn", value: "1" } } },
      { subject: { identifier: { value: "1" }, type: "Patient" } },
      { subject: ref(`Patient/${PATIENT}`, { type: "Group" }) },
      { subject: ref("Group/1", { type: "Patient" }) },
      { subject: ref(`Patient/${PATIENT}`, { type: 1 }) },
      { subject: ref("Foo/1") },
      { subject: `Patient/${PATIENT}` },
      { subject: { reference: 123 } },
      { subject: { reference: { reference: `Patient/${PATIENT}` } } },
      { subject: [`Patient/${PATIENT}`] },
      { subject: true },
      { performer: [ref("Practitioner/9"), ref(`Practitioner/${long}`)] },
      { performer: [ref("urn:uuid:1")] },
      { performer: [{ identifier: { value: "npi" } }] },
      { performer: ["Practitioner/9"] },
    ];
    expect(await check(cases.map((c) => [obs(c), "Observation"]))).toEqual([...Array(23).fill(["unchecked_reference", "subject"]), ...Array(4).fill(["unchecked_reference", "performer"])]);
  });

  it("takes ids up to 64 characters", async () => {
    const id64 = "a".repeat(64);
    expect(await check([[obs({ performer: [ref(`Practitioner/${id64}`)] }), "Observation"]])).toEqual([OK]);
    expect(await check([[obs({ subject: ref(`Patient/${id64}`) }), "Observation"]], id64)).toEqual([OK]);
  });

  it("reports the first path in compartment order when several are wrong", async () => {
    expect(
      await check([
        [obs({ subject: ref("Patient/456"), performer: [ref("urn:uuid:1")] }), "Observation"],
        [obs({ subject: ref("urn:uuid:1"), performer: [ref("Patient/456")] }), "Observation"],
      ]),
    ).toEqual([
      ["other_patient", "subject"],
      ["unchecked_reference", "subject"],
    ]);
  });
});

describe("Encounter and Condition", () => {
  const enc = (over: Json): Json => ({ resourceType: "Encounter", status: "finished", class: { code: "AMB" }, subject: me, ...over });
  const cond = (over: Json): Json => ({ resourceType: "Condition", subject: me, ...over });

  it("check every compartment path of the type", async () => {
    expect(
      await check([
        [enc({}), "Encounter"],
        [enc({ subject: ref("Patient/456") }), "Encounter"],
        [enc({ subject: ref("urn:uuid:1") }), "Encounter"],
        [enc({ subject: undefined }), "Encounter"],
        [cond({}), "Condition"],
        [cond({ asserter: ref("Practitioner/9") }), "Condition"],
        [cond({ asserter: me }), "Condition"],
        [cond({ subject: ref("Group/1"), asserter: me }), "Condition"],
        [cond({ asserter: ref("Patient/456") }), "Condition"],
        [cond({ asserter: ref("RelatedPerson/456", { type: "Patient" }) }), "Condition"],
        [cond({ asserter: { identifier: { value: "x" } } }), "Condition"],
        [cond({ asserter: { identifier: { value: "x" }, type: "RelatedPerson" } }), "Condition"],
        [cond({ subject: ref("Group/1"), asserter: ref("Practitioner/9") }), "Condition"],
      ]),
    ).toEqual([
      OK,
      ["other_patient", "subject"],
      ["unchecked_reference", "subject"],
      ["no_patient", undefined],
      OK,
      OK,
      OK,
      OK,
      ["other_patient", "asserter"],
      ["unchecked_reference", "asserter"],
      ["unchecked_reference", "asserter"],
      OK,
      ["no_patient", undefined],
    ]);
  });
});

describe("Patient", () => {
  const pat = (over: Json): Json => ({ resourceType: "Patient", id: PATIENT, ...over });

  it("is the patient itself, named by id, and links only to itself or non-patients", async () => {
    expect(
      await check([
        [pat({}), "Patient"],
        [pat({ link: [{ other: me, type: "seealso" }] }), "Patient"],
        [pat({ link: [{ other: ref("RelatedPerson/r"), type: "seealso" }] }), "Patient"],
        [pat({ link: [{ type: "seealso" }] }), "Patient"],
        [pat({ link: [{ other: { display: "someone" }, type: "seealso" }] }), "Patient"],
        [pat({ id: "456" }), "Patient"],
        [pat({ id: undefined }), "Patient"],
        [pat({ id: 123 }), "Patient"],
        [pat({ link: [{ other: ref("Patient/456"), type: "replaced-by" }] }), "Patient"],
        [pat({ link: [{ other: me }, { other: ref("Patient/456") }] }), "Patient"],
        [pat({ link: [{ other: ref("http://x/Patient/456") }] }), "Patient"],
        [pat({ link: [{ other: { identifier: { value: "mrn" } } }] }), "Patient"],
        [pat({ link: [{ other: "Patient/456" }] }), "Patient"],
        [{ resourceType: "Observation", id: PATIENT }, "Patient"],
      ]),
    ).toEqual([
      OK,
      OK,
      OK,
      OK,
      OK,
      ["not_patient", undefined],
      ["not_patient", undefined],
      ["not_patient", undefined],
      ["other_patient", "link.other"],
      ["other_patient", "link.other"],
      ["unchecked_reference", "link.other"],
      ["unchecked_reference", "link.other"],
      ["unchecked_reference", "link.other"],
      ["wrong_type", undefined],
    ]);
  });
});

describe("nested paths", () => {
  const proc = (over: Json): Json => ({ resourceType: "Procedure", status: "completed", subject: me, ...over });
  const actor = (...refs: unknown[]): Json[] => refs.map((r) => ({ actor: r }));

  it("fan out through arrays at both levels (Procedure performer.actor)", async () => {
    expect(
      await check([
        [proc({ performer: actor(ref("Practitioner/1"), me) }), "Procedure"],
        [proc({ performer: [{ function: { text: "surgeon" } }, ...actor(ref("Practitioner/1"))] }), "Procedure"],
        // Only the nested path names the patient.
        [proc({ subject: ref("Group/1"), performer: actor(ref("Practitioner/1"), me) }), "Procedure"],
        [proc({ subject: ref("Group/1"), performer: [{ actor: [ref("Device/1"), me] }] }), "Procedure"],
        [proc({ performer: actor(ref("Practitioner/1"), ref("Patient/456")) }), "Procedure"],
        [proc({ performer: { actor: ref("Patient/456") } }), "Procedure"],
        // An array where the element is a single Reference, in an array: both levels fan out.
        [proc({ performer: [{ actor: ref("Practitioner/1") }, { actor: [ref("Device/1"), ref("Patient/456")] }] }), "Procedure"],
        [proc({ performer: actor(ref("Practitioner/1"), ref("#contained")) }), "Procedure"],
        [proc({ performer: [{ actor: [ref("Practitioner/1"), "Patient/456"] }] }), "Procedure"],
        [proc({ subject: ref("Group/1"), performer: actor(ref("Practitioner/1")) }), "Procedure"],
        [proc({ subject: ref("Patient/456"), performer: actor(ref("Patient/456")) }), "Procedure"],
      ]),
    ).toEqual([
      OK,
      OK,
      OK,
      OK,
      ["other_patient", "performer.actor"],
      ["other_patient", "performer.actor"],
      ["other_patient", "performer.actor"],
      ["unchecked_reference", "performer.actor"],
      ["unchecked_reference", "performer.actor"],
      ["no_patient", undefined],
      ["other_patient", "subject"],
    ]);
  });

  it("go three levels deep (CarePlan activity.detail.performer)", async () => {
    const plan = (...performers: unknown[][]): Json => ({ resourceType: "CarePlan", status: "active", intent: "plan", subject: me, activity: performers.map((p) => ({ detail: { performer: p } })) });
    expect(
      await check([
        [plan([ref("Practitioner/1")], [me, ref("CareTeam/t")]), "CarePlan"],
        [plan([ref("Practitioner/1")], [ref("Organization/o"), ref("Patient/456")]), "CarePlan"],
        [plan([], [ref("urn:uuid:x")]), "CarePlan"],
        [{ resourceType: "CarePlan", subject: me, activity: [{ reference: ref("Appointment/a") }, { detail: { kind: "Task" } }] }, "CarePlan"],
      ]),
    ).toEqual([OK, ["other_patient", "activity.detail.performer"], ["unchecked_reference", "activity.detail.performer"], OK]);
  });
});
