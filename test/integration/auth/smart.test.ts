/**
 * SMART scopes and the patient compartment on the request side (issue #5, in progress),
 * through the real stack: tokens from oidc-provider, data from the Medplum upstream. Every
 * refusal is decided before the upstream sees the request.
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mint } from "../../harness/authz-client.ts";
import { clearUpstream, seededPatients, stack, upstreamRequests } from "../../harness/env.ts";
import { expectOutcome, type OperationOutcome } from "../../harness/fhir.ts";

interface Bundle {
  resourceType: string;
  entry?: { resource: { id: string; subject?: { reference: string }; category?: { coding: { code: string }[] }[] } }[];
}

let A = "";
let B = "";
let bObservation = "";
let aVital = "";
let aLab = "";

async function get(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${stack().gateway}${path}`, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } });
}

async function expect403(res: Response, message?: RegExp): Promise<OperationOutcome> {
  const oo = expectOutcome(res.status, 403, res.headers.get("content-type"), await res.text());
  if (message !== undefined) expect(oo.issue[0]?.diagnostics).toMatch(message);
  expect(await upstreamRequests()).toEqual([]);
  return oo;
}

/** Straight to the upstream, bypassing the gateway: to find ids for the tests. */
async function upstreamSearch(query: string): Promise<Bundle> {
  return (await (await fetch(`${stack().upstream}/acme/R4/${query}`)).json()) as Bundle;
}

beforeAll(async () => {
  [A, B] = (await seededPatients("acme")) as [string, string];
  bObservation = (await upstreamSearch(`Observation?patient=${B}`)).entry?.[0]?.resource.id ?? "";
  aVital = (await upstreamSearch(`Observation?patient=${A}&category=vital-signs`)).entry?.[0]?.resource.id ?? "";
  aLab = (await upstreamSearch(`Observation?patient=${A}&category=laboratory`)).entry?.[0]?.resource.id ?? "";
  expect(aLab).not.toBe("");
  expect(bObservation).not.toBe("");
  expect(aVital).not.toBe("");
});

describe("a patient token for patient A", () => {
  let token = "";
  beforeAll(async () => {
    token = await mint({ scope: "patient/*.rs launch/patient", patient: A });
  });
  beforeEach(clearUpstream);

  it("reads A's observations", async () => {
    const res = await get(`/secure/fhir/Observation?patient=${A}`, token);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(bundle.entry?.length ?? 0).toBeGreaterThan(0);
    expect(new Set(bundle.entry?.map((e) => e.resource.subject?.reference))).toEqual(new Set([`Patient/${A}`]));
    for (const q of [`subject=Patient/${A}`, `subject:Patient=${A}`, `patient=Patient/${A}`]) {
      expect((await get(`/secure/fhir/Observation?${q}`, token)).status, q).toBe(200);
    }
    expect((await get(`/secure/fhir/Patient/${A}`, token)).status).toBe(200);
    expect((await get(`/secure/fhir/Patient?_id=${A}`, token)).status).toBe(200);
  });

  it("gets 403 reading B's Observation by id, and no byte of it (checked on the response)", async () => {
    const res = await get(`/secure/fhir/Observation/${bObservation}`, token);
    const body = await res.clone().text();
    expectOutcome(res.status, 403, res.headers.get("content-type"), await res.text());
    expect(body).not.toContain(bObservation);
    expect(body).not.toContain(B);
    // The request did reach the upstream (a read by id cannot be decided without the resource).
    expect((await upstreamRequests()).map((r) => r.url)).toEqual([`/acme/R4/Observation/${bObservation}`]);
    await clearUpstream();
    await expect403(await get(`/secure/fhir/Patient/${B}`, token), /patient in context/);
  });

  it("reads its own Observation by id, and gets 403 (not 404) for an id that does not exist", async () => {
    const own = await get(`/secure/fhir/Observation/${aVital}`, token);
    expect(own.status).toBe(200);
    expect(((await own.json()) as { id: string }).id).toBe(aVital);
    const missing = await get(`/secure/fhir/Observation/does-not-exist`, token);
    expectOutcome(missing.status, 403, missing.headers.get("content-type"), await missing.text());
  });

  it("gets 403 searching Observation?patient=B, and in every other way of naming B", async () => {
    for (const q of [`patient=${B}`, `subject=Patient/${B}`, `subject:Patient=${B}`, `patient=${A},${B}`, `patient=${A}&patient=${B}`, `patient=${A}&subject=Patient/${B}`]) {
      await expect403(await get(`/secure/fhir/Observation?${q}`, token), /patient in context/);
    }
    await expect403(await get(`/secure/fhir/Patient?_id=${B}`, token));
  });

  it("gets 403 searching Observation with no patient", async () => {
    await expect403(await get(`/secure/fhir/Observation`, token), /must name the patient/);
    await expect403(await get(`/secure/fhir/Observation?category=laboratory`, token));
  });

  it("gets 403 on chained, _has and escaping _include searches", async () => {
    await expect403(await get(`/secure/fhir/Observation?subject.name=Smith`, token));
    await expect403(await get(`/secure/fhir/Observation?patient=${A}&subject:Patient.identifier=x`, token));
    await expect403(await get(`/secure/fhir/Patient?_id=${A}&_has:Observation:patient:code=1234-5`, token));
    await expect403(await get(`/secure/fhir/Observation?patient=${A}&_include=Observation:performer`, token));
  });

  it("is checked on POST _search bodies too", async () => {
    const post = (body: string): Promise<Response> =>
      get(`/secure/fhir/Observation/_search`, token, { method: "POST", body, headers: { "content-type": "application/x-www-form-urlencoded" } });
    await expect403(await post(`patient=${B}`));
    // Allowed and forwarded with its body intact (the demo upstream itself only takes JSON
    // bodies, so its answer is not the point here).
    const ok = await post(`patient=${A}`);
    expect(ok.status).not.toBe(403);
    const seen = await upstreamRequests();
    expect(seen.map((r) => [r.method, r.url, r.body])).toEqual([["POST", "/acme/R4/Observation/_search", `patient=${A}`]]);
  });

  it("cannot search across all types, write without a write scope, or run operations other than $export", async () => {
    await expect403(await get(`/secure/fhir/?_type=Observation`, token));
    await expect403(await get(`/secure/fhir/Observation`, token, { method: "POST", body: JSON.stringify({ resourceType: "Observation", status: "final", code: {}, subject: { reference: `Patient/${A}` } }), headers: { "content-type": "application/fhir+json" } }), /requires patient\/Observation.c/);
    await expect403(await get(`/secure/fhir/Observation/$validate`, token), /operation/);
    // $everything is listed in the tenant's policy with permission r: on A only.
    await expect403(await get(`/secure/fhir/Patient/${B}/$everything`, token), /patient in context/);
    expect((await get(`/secure/fhir/Patient/${A}/$everything`, token)).status).not.toBe(403);
  });
});

describe("a patient/Condition.rs token for patient A (issue #14)", () => {
  let token = "";
  beforeAll(async () => {
    token = await mint({ scope: "patient/Condition.rs launch/patient", patient: A });
  });
  beforeEach(clearUpstream);

  it("searches Condition?subject=Patient/A and subject:Patient=A, which reach the upstream as sent", async () => {
    const res = await get(`/secure/fhir/Condition?subject=Patient/${A}`, token);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(bundle.entry?.length ?? 0).toBeGreaterThan(0);
    expect(new Set(bundle.entry?.map((e) => e.resource.subject?.reference))).toEqual(new Set([`Patient/${A}`]));
    expect((await upstreamRequests()).map((r) => [r.method, decodeURIComponent(r.url)])).toEqual([["GET", `/acme/R4/Condition?subject=Patient/${A}`]]);
    await clearUpstream();
    expect((await get(`/secure/fhir/Condition?subject:Patient=${A}`, token)).status).toBe(200);
    expect((await upstreamRequests()).length).toBe(1);
  });

  it("gets 403 for subject=Patient/B and every other subject that could name someone else, and the upstream sees none", async () => {
    for (const q of [`subject=Patient/${B}`, `subject:Patient=${B}`, `patient=${A}&subject=Patient/${B}`, `subject=Patient/${A},Patient/${B}`, `subject=${A}`, `subject=Group/${A}`, `subject:Group=${A}`, `subject.name=Smith`]) {
      await expect403(await get(`/secure/fhir/Condition?${q}`, token), /patient in context/);
    }
  });
});

describe("writes under patient scopes", () => {
  beforeEach(clearUpstream);
  const send = (token: string, method: string, path: string, body?: unknown): Promise<Response> =>
    get(`/secure/fhir/${path}`, token, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/fhir+json" } }) });
  const obsFor = (patient: string, id?: string): Record<string, unknown> => ({
    resourceType: "Observation",
    ...(id === undefined ? {} : { id }),
    status: "final",
    code: { text: "note" },
    subject: { reference: `Patient/${patient}` },
  });

  it("create and update must reference the patient in context, and update/delete must find the resource in the compartment", async () => {
    const token = await mint({ scope: "patient/Observation.cruds launch/patient", patient: A });
    const created = await send(token, "POST", "Observation", obsFor(A));
    expect(created.status).toBe(201);
    const own = ((await created.json()) as { id: string }).id;
    await clearUpstream();

    await expect403(await send(token, "POST", "Observation", obsFor(B)), /Observation\.subject names another patient/);
    await expect403(await send(token, "POST", "Observation", { resourceType: "Observation", status: "final", code: {} }), /reference the patient in context/);
    // A body of another type than the URL's is bad input, whatever the scopes.
    const wrongType = await send(token, "POST", "Observation", { resourceType: "Condition", subject: { reference: `Patient/${A}` } });
    expectOutcome(wrongType.status, 400, wrongType.headers.get("content-type"), await wrongType.text());
    expect(await upstreamRequests()).toEqual([]);
    // Moving B's resource into A's compartment: the body is fine, the resource there is not A's.
    const move = await send(token, "PUT", `Observation/${bObservation}`, obsFor(A, bObservation));
    expectOutcome(move.status, 403, move.headers.get("content-type"), await move.text());
    const del = await send(token, "DELETE", `Observation/${bObservation}`);
    expectOutcome(del.status, 403, del.headers.get("content-type"), await del.text());
    const gone = await send(token, "DELETE", "Observation/does-not-exist");
    expectOutcome(gone.status, 403, gone.headers.get("content-type"), await gone.text());
    // The checks fetched B's resource to look at it; the writes themselves never went out.
    expect((await upstreamRequests()).map((r) => `${r.method} ${r.url}`).filter((r) => !r.startsWith("GET "))).toEqual([]);
    await clearUpstream();
    const patch = JSON.stringify([{ op: "replace", path: "/status", value: "amended" }]);
    await expect403(await get(`/secure/fhir/Observation/${own}`, token, { method: "PATCH", body: patch, headers: { "content-type": "application/json-patch+json" } }), /patch/);

    expect((await send(token, "PUT", `Observation/${own}`, { ...obsFor(A, own), status: "amended" })).status).toBe(200);
    expect((await send(token, "DELETE", `Observation/${own}`)).status).toBeLessThan(300);
  });
});

describe("batch and transaction Bundles", () => {
  beforeEach(clearUpstream);
  const post = (token: string, bundle: unknown): Promise<Response> =>
    get(`/secure/fhir/`, token, { method: "POST", body: JSON.stringify(bundle), headers: { "content-type": "application/fhir+json" } });

  it("reject a transaction with forbidden entries, one issue per entry naming its index; the upstream sees nothing", async () => {
    const token = await mint({ scope: "patient/*.rs launch/patient", patient: A });
    const res = await post(token, {
      resourceType: "Bundle",
      type: "transaction",
      entry: [
        { request: { method: "GET", url: `Observation?patient=${A}` } },
        { request: { method: "GET", url: `Observation?patient=${B}` } },
        { request: { method: "GET", url: `Patient/${A}` } },
        { resource: { resourceType: "Observation", status: "final", code: {}, subject: { reference: `Patient/${A}` } }, request: { method: "POST", url: "Observation" } },
      ],
    });
    const oo = expectOutcome(res.status, 403, res.headers.get("content-type"), await res.text()) as unknown as { issue: { expression?: string[]; diagnostics?: string }[] };
    expect(oo.issue.map((i) => i.expression?.[0])).toEqual(["Bundle.entry[1]", "Bundle.entry[3]"]);
    expect(oo.issue[1]?.diagnostics).toContain("requires patient/Observation.c");
    expect(JSON.stringify(oo)).not.toContain(B);
    expect(await upstreamRequests()).toEqual([]);
  });

  it("forward a Bundle whose entries are all allowed, and refuse what is not a batch or transaction", async () => {
    const token = await mint({ scope: "user/*.cruds" });
    const ok = await post(token, { resourceType: "Bundle", type: "batch", entry: [{ request: { method: "GET", url: `Observation?patient=${B}` } }, { request: { method: "GET", url: `Patient/${A}` } }] });
    expect(ok.status).not.toBe(403);
    expect((await upstreamRequests()).map((r) => [r.method, r.url])).toEqual([["POST", "/acme/R4/"]]);
    await clearUpstream();
    const notBundle = await post(token, { resourceType: "Observation" });
    expectOutcome(notBundle.status, 400, notBundle.headers.get("content-type"), await notBundle.text());
    const absolute = await post(token, { resourceType: "Bundle", type: "batch", entry: [{ request: { method: "GET", url: "http://elsewhere.example/Patient/1" } }] });
    expectOutcome(absolute.status, 403, absolute.headers.get("content-type"), await absolute.text());
    const nested = await post(token, { resourceType: "Bundle", type: "batch", entry: [{ request: { method: "POST", url: "" } }, { request: { method: "POST", url: "/" } }] });
    expectOutcome(nested.status, 403, nested.headers.get("content-type"), await nested.text());
    expect(await upstreamRequests()).toEqual([]);
  });
});

describe("403s name the missing permission", () => {
  beforeEach(clearUpstream);

  it("says which scope was missing, and never echoes data", async () => {
    const token = await mint({ scope: "patient/Observation.rs launch/patient", patient: A });
    const oo = await expect403(await get(`/secure/fhir/Condition?patient=${A}`, token));
    expect(oo.issue[0]?.diagnostics).toContain("requires patient/Condition.s");
    expect(JSON.stringify(oo)).not.toContain(A);
    const v1 = await mint({ scope: "user/Patient.read" });
    expect((await expect403(await get(`/secure/fhir/Patient`, v1, { method: "POST", body: JSON.stringify({ resourceType: "Patient" }), headers: { "content-type": "application/fhir+json" } }))).issue[0]?.diagnostics).toContain("requires user/Patient.c");
    const metrics = await (await fetch(`${stack().admin}/metrics`)).text();
    expect(metrics).toMatch(/fe_scope_denials_total\{tenant="secure",resource_type="Condition",missing="patient\/Condition.s",mode="enforced"\} [1-9]/);
  });
});

describe("scopes with %2F for the slash, as Entra ID issues them", () => {
  beforeEach(clearUpstream);

  it("patient%2FObservation.rs launch%2Fpatient reads the patient's own Observations and nothing of another patient's", async () => {
    const scope = "patient%2FObservation.rs launch%2Fpatient";
    const token = await mint({ scope, patient: A });
    // The demo server put the scope in the token as a real one would, still encoded.
    expect(JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"))).toMatchObject({ scope, patient: A });
    const res = await get(`/secure/fhir/Observation?patient=${A}`, token);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(bundle.entry?.length ?? 0).toBeGreaterThan(0);
    expect(new Set(bundle.entry?.map((e) => e.resource.subject?.reference))).toEqual(new Set([`Patient/${A}`]));
    expect((await upstreamRequests()).map((r) => r.url)).toEqual([`/acme/R4/Observation?patient=${A}`]);
    await clearUpstream();
    await expect403(await get(`/secure/fhir/Observation?patient=${B}`, token), /patient in context/);
    await expect403(await get(`/secure/fhir/Condition?patient=${A}`, token), /requires patient\/Condition.s/);
  });
});

describe("granular scopes", () => {
  beforeEach(clearUpstream);

  it("patient/Observation.rs?category=laboratory gets only laboratory results, and a vital-signs read by id is 403", async () => {
    const token = await mint({ scope: "patient/Observation.rs?category=laboratory launch/patient", patient: A });
    const res = await get(`/secure/fhir/Observation?patient=${A}&category=laboratory`, token);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(bundle.entry?.length ?? 0).toBeGreaterThan(0);
    for (const e of bundle.entry ?? []) expect(e.resource.category?.[0]?.coding[0]?.code).toBe("laboratory");
    await clearUpstream();
    await expect403(await get(`/secure/fhir/Observation?patient=${A}`, token), /requires patient\/Observation.s/);
    await expect403(await get(`/secure/fhir/Observation?patient=${A}&category=vital-signs`, token));
    const vital = await get(`/secure/fhir/Observation/${aVital}`, token);
    const body = await vital.clone().text();
    expectOutcome(vital.status, 403, vital.headers.get("content-type"), await vital.text());
    expect(body).not.toContain(aVital);
    const lab = await get(`/secure/fhir/Observation/${aLab}`, token);
    expect(lab.status).toBe(200);
    expect(((await lab.json()) as { id: string }).id).toBe(aLab);
  });
});

describe("system and user scopes", () => {
  beforeEach(clearUpstream);

  it("have no compartment restriction, and $export needs system/*.rs", async () => {
    const user = await mint({ scope: "user/*.rs" });
    expect((await get(`/secure/fhir/Observation?patient=${B}`, user)).status).toBe(200);
    expect((await get(`/secure/fhir/Observation/${bObservation}`, user)).status).toBe(200);
    await clearUpstream();
    await expect403(await get(`/secure/fhir/$export`, user), /requires system\/\*\.rs/);
    const system = await mint({ scope: "system/*.rs" });
    const res = await get(`/secure/fhir/$export`, system, { headers: { prefer: "respond-async" } });
    expect(res.status).not.toBe(403);
  });
});

describe("patient parameter injection (compartmentSearch: inject)", () => {
  beforeEach(clearUpstream);

  it("adds the patient to a search that names none, and still refuses another patient", async () => {
    const token = await mint({ tenant: "inject", scope: "patient/*.rs launch/patient", patient: A });
    const res = await get(`/inject/fhir/Observation?category=laboratory`, token);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(new Set(bundle.entry?.map((e) => e.resource.subject?.reference))).toEqual(new Set([`Patient/${A}`]));
    expect((await get(`/inject/fhir/Patient`, token)).status).toBe(200);
    expect((await upstreamRequests()).map((r) => r.url)).toEqual([`/acme/R4/Observation?category=laboratory&patient=${A}`, `/acme/R4/Patient?_id=${A}`]);
    // The injected patient takes its place in the canonical query, by name.
    await clearUpstream();
    expect((await get(`/inject/fhir/Observation?status=final&category=laboratory`, token)).status).toBe(200);
    expect((await upstreamRequests()).map((r) => r.url)).toEqual([`/acme/R4/Observation?category=laboratory&patient=${A}&status=final`]);
    await clearUpstream();
    await expect403(await get(`/inject/fhir/Observation?patient=${B}`, token));
    await expect403(await get(`/inject/fhir/Observation?subject.name=x`, token));
  });
});

describe("shadow mode", () => {
  beforeEach(clearUpstream);

  it("forwards what it would deny, and counts it", async () => {
    const token = await mint({ tenant: "shadow", scope: "patient/*.rs launch/patient", patient: A });
    const res = await get(`/shadow/fhir/Observation?patient=${B}`, token);
    expect(res.status).toBe(200);
    expect((await upstreamRequests()).length).toBe(1);
    const metrics = await (await fetch(`${stack().admin}/metrics`)).text();
    expect(metrics).toMatch(/fe_scope_denials_total\{tenant="shadow",resource_type="Observation",missing="compartment_other_patient",mode="shadow"\} [1-9]/);
  });
});
