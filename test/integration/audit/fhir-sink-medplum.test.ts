/**
 * The FHIR sink's writes against Medplum: the batch Bundle that audit/balp's toBundle makes
 * (computed under LuaJIT, encoded by cjson, as the sink sends it) is POSTed to a tenant base of
 * the demo upstream (@medplum/fhir-router's FhirRouter over a MemoryRepository), then POSTed
 * again as a retry would. Each AuditEvent is then found exactly once by patient, by date and by
 * entity, another patient's or another tenant's search finds none of them, and each reads back
 * as it was written.
 *
 * The upstream is this file's own (started in-process), so the AuditEvents in it are the ones
 * written here and nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream, type Upstream } from "../../../demo/upstream.ts";
import { runLua } from "../../harness/luajit.ts";
import type { AuditEvent } from "@medplum/fhirtypes";

/** The decoded event's fields used here (audit/event.schema.json; balp.ts's AuditRecord). */
interface AuditRecord {
  v: number; ts: number; request_id?: string; tenant: string; method: string; interaction?: string;
  resource_type?: string; resource_id?: string; operation?: string; params?: { name: string }[];
  issuer?: string; sub?: string; client_id?: string; fhir_user_type?: string; token_id?: string; patient?: string;
  decision: "allow" | "deny" | "shadow-deny"; reason?: string; policy: string; status: number; latency_ms: number;
  ip?: string; break_glass?: boolean; break_glass_reason?: string;
}

const OBSERVER = "fhir-edge it";
const POLICY = "0d813b11c11c0e025d1b8036a5495b846a6f423735acab6ded4c9c065895f131";
const DAY = "2025-12-03";
const DAY_MS = Date.parse(`${DAY}T00:00:00.000Z`);
const BEFORE_MS = Date.parse("2025-12-01T23:59:59.999Z");

const user = { issuer: "main", sub: "user-42", client_id: "demo-app", fhir_user_type: "Practitioner", token_id: "0123456789abcdef" } as const;
const common = { v: 1, tenant: "acme", policy: POLICY, latency_ms: 1.5, ip: "192.0.2.7", break_glass: false } as const;

/** Events of one batch: p1 has three (one of them two days before), p2 one, and one has no patient. */
const EVENTS: readonly AuditRecord[] = [
  { ...common, ts: DAY_MS + 1000, request_id: "req-it-0001", method: "GET", interaction: "read", resource_type: "Observation", resource_id: "acme-p1-obs1", ...user, patient: "acme-p1", decision: "allow", status: 200 },
  { ...common, ts: DAY_MS + 2000, method: "GET", interaction: "search-type", resource_type: "Observation", params: [{ name: "code" }, { name: "patient" }], ...user, patient: "acme-p1", decision: "deny", reason: "forbidden", status: 403 },
  { ...common, ts: BEFORE_MS, method: "GET", interaction: "read", resource_type: "Patient", resource_id: "acme-p1", ...user, patient: "acme-p1", decision: "shadow-deny", reason: "forbidden", status: 200 },
  { ...common, ts: DAY_MS + 3000, method: "GET", interaction: "operation-instance", resource_type: "Patient", resource_id: "acme-p2", operation: "$everything", ...user, patient: "acme-p2", decision: "allow", status: 502, break_glass: true, break_glass_reason: "emergency" },
  { ...common, ts: DAY_MS + 4000, tenant: "none", method: "GET", decision: "deny", reason: "nginx-400", status: 400 },
];
/** As the sink derives them: stream, seal seq, index in the batch. */
const IDS = EVENTS.map((_, i) => `w0-1764770000123-4242-7-${i}`);
const P1 = [0, 1, 2].map((i) => IDS[i]);
const P2 = [IDS[3]];
const ON_DAY = [0, 1, 3, 4].map((i) => IDS[i]);

interface Entry {
  resource?: AuditEvent;
  response?: { status: string; location?: string };
}
interface Bundle {
  resourceType: string;
  type?: string;
  total?: number;
  entry?: Entry[];
}

/** toBundle's output: every entry has its resource (with an id) and its request. */
interface Sent {
  entry: { resource: AuditEvent & { id: string }; request: { method: string; url: string } }[];
}

let up: Upstream;
let base: string;
let bundleJson: string;

async function post(json: string): Promise<{ status: number; body: Bundle }> {
  const res = await fetch(base, { method: "POST", headers: { "content-type": "application/fhir+json" }, body: json });
  return { status: res.status, body: (await res.json()) as Bundle };
}

/** The ids a search returns, in order (a duplicate would show twice). */
async function search(query: string, at = base): Promise<string[]> {
  const res = await fetch(`${at}/AuditEvent?${query}&_count=100`);
  expect(res.status, query).toBe(200);
  const b = (await res.json()) as Bundle;
  expect(b.type).toBe("searchset");
  return (b.entry ?? []).map((e) => e.resource?.id ?? "");
}

const sorted = (xs: readonly (string | undefined)[]): string[] => xs.map((x) => x ?? "").sort();

beforeAll(async () => {
  up = await startUpstream({ port: 0, tenants: ["acme", "globex"], patientsPerTenant: 3 });
  base = up.baseUrl("acme");
  const [r] = await runLua("audit.balp", `function(evs, ids, obs) return assert(require("cjson.safe").encode(m.toBundle(evs, ids, obs))) end`, [[EVENTS, IDS, OBSERVER]]);
  if (r === undefined || !r.ok) throw new Error(`toBundle raised: ${r?.ok === false ? r.error : "nothing returned"}`);
  bundleJson = r.values[0] as string;
});
afterAll(async () => up.close());

describe("FHIR sink: toBundle's batch in Medplum (FhirRouter, MemoryRepository)", () => {
  it("is accepted, entry by entry, and a retry of the same batch is accepted too", async () => {
    const sent = JSON.parse(bundleJson) as Sent;
    expect(sent.entry.map((e) => `${e.request.method} ${e.request.url}`)).toEqual(IDS.map((id) => `PUT AuditEvent/${id}`));
    for (let attempt = 0; attempt < 2; attempt++) {
      const { status, body } = await post(bundleJson);
      expect(status).toBe(200);
      expect(body.type).toBe("batch-response");
      expect(body.entry?.map((e) => e.response?.status), `attempt ${attempt}`).toEqual(IDS.map(() => expect.stringMatching(/^20[01]$/)));
      expect(body.entry?.map((e) => e.response?.location)).toEqual(IDS.map((id) => expect.stringMatching(new RegExp(`^AuditEvent/${id}(/|$)`))));
    }
  });

  it("holds each event once, at its id, as it was written", async () => {
    expect(sorted(await search("_sort=date"))).toEqual(sorted(IDS));
    const sent = JSON.parse(bundleJson) as Sent;
    for (const e of sent.entry) {
      const res = await fetch(`${base}/AuditEvent/${e.resource.id}`);
      expect(res.status).toBe(200);
      const { meta, ...stored } = (await res.json()) as AuditEvent & { meta?: unknown };
      expect(meta).toBeDefined();
      expect(stored).toEqual(e.resource);
    }
  });

  it("finds a patient's events exactly once by patient, as a reference or a bare id", async () => {
    expect(sorted(await search("patient=Patient/acme-p1"))).toEqual(sorted(P1));
    expect(sorted(await search("patient=acme-p1"))).toEqual(sorted(P1));
    expect(sorted(await search("patient=Patient/acme-p2"))).toEqual(sorted(P2));
  });

  it("finds none of them for another patient, or in another tenant", async () => {
    expect(await search("patient=Patient/acme-p3")).toEqual([]);
    expect(await search("patient=Patient/globex-p1")).toEqual([]);
    const globex = up.baseUrl("globex");
    expect(await search("patient=Patient/acme-p1", globex)).toEqual([]);
    expect(await search("_sort=date", globex)).toEqual([]);
  });

  it("finds them by date, exactly once, and only those of the day asked", async () => {
    expect(sorted(await search(`date=ge${DAY}`))).toEqual(sorted(ON_DAY));
    expect(await search(`date=lt${DAY}`)).toEqual([IDS[2]]);
    expect(await search("date=ge2025-12-04")).toEqual([]);
    expect(sorted(await search(`date=ge${DAY}&patient=Patient/acme-p1`))).toEqual(sorted([IDS[0], IDS[1]]));
    // Recorded is the request's start, to the millisecond.
    const at = (ms: number): string => encodeURIComponent(new Date(ms).toISOString());
    expect(await search(`date=ge${at(DAY_MS + 3000)}&date=lt${at(DAY_MS + 3001)}`)).toEqual([IDS[3]]);
    expect(await search(`date=gt${at(DAY_MS + 3000)}&date=lt${at(DAY_MS + 4000)}`)).toEqual([]);
  });

  it("finds them by entity (the data read), by outcome and by subtype", async () => {
    expect(await search("entity=Observation/acme-p1-obs1")).toEqual([IDS[0]]);
    expect(sorted(await search("entity=Patient/acme-p1"))).toEqual(sorted(P1));
    expect(await search("outcome=8")).toEqual([IDS[3]]);
    expect(sorted(await search("outcome=4"))).toEqual(sorted([IDS[1], IDS[4]]));
    expect(await search("subtype=http://hl7.org/fhir/restful-interaction|search-type")).toEqual([IDS[1]]);
  });

  it("would duplicate on a retry with a conditional create on _id (why toBundle PUTs)", async () => {
    // A batch create replaces the resource's id with one the server generates, so `_id` never
    // matches on the retry; R4's AuditEvent has no identifier to make the condition of.
    const one = JSON.parse(bundleJson) as Sent;
    const resource = { ...one.entry[0]?.resource, id: "cond-create-1" };
    const json = JSON.stringify({ resourceType: "Bundle", type: "batch", entry: [{ resource, request: { method: "POST", url: "AuditEvent", ifNoneExist: "_id=cond-create-1" } }] });
    await post(json);
    await post(json);
    expect(await search("entity=Observation/acme-p1-obs1")).toHaveLength(3);
    expect(await search("_id=cond-create-1")).toEqual([]);
  });
});
