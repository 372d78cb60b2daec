/**
 * The gateway's audit events (README "Events") as FHIR R4 AuditEvent resources shaped like the
 * IHE Basic Audit Log Patterns (BALP, BasicAudit and its OAuth access-token-use profiles), and
 * the batch Bundle that writes them to a FHIR sink. Pure: no ngx calls, so it runs (and is
 * tested) under plain LuaJIT; the sink runs it in a timer, off the request path.
 *
 * What the event has and no AuditEvent element holds (request id aside, which BALP's
 * `XrequestId` entity carries) goes in one more entity, typed `gateway` in fhir-edge's own code
 * system, as `detail` type/valueString pairs, which is how BALP carries such data: nothing of the
 * event is lost, and nothing is added that the event does not have (no query values, no ids but
 * the event's own).
 */

const format = string.format;
const floor = math.floor;

// ---- The decoded event ----

/** One query parameter of the event: its (percent-encoded) name, and its value's HMAC with `queryValues: "hmac"`. */
export interface AuditParam {
  name: string;
  hmac?: string;
}

/** An event line decoded (audit/event.schema.json, version 1). Absent means unknown or not applicable. */
export interface AuditRecord {
  v: number;
  /** Request start, ms since the epoch, UTC. */
  ts: number;
  request_id?: string;
  traceparent?: string;
  tenant: string;
  method: string;
  interaction?: string;
  resource_type?: string;
  resource_id?: string;
  operation?: string;
  route?: string;
  params?: AuditParam[];
  issuer?: string;
  sub?: string;
  client_id?: string;
  fhir_user_type?: string;
  token_id?: string;
  patient?: string;
  scope?: string;
  decision: "allow" | "deny" | "shadow-deny";
  reason?: string;
  policy: string;
  status: number;
  cache?: string;
  ratelimit?: string;
  latency_ms: number;
  ip?: string;
  ua_hash?: string;
  break_glass?: boolean;
  break_glass_reason?: string;
}

// ---- The FHIR R4 subset written ----

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}

export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

export interface Identifier {
  system?: string;
  value?: string;
}

export interface Reference {
  reference?: string;
  type?: string;
  identifier?: Identifier;
  display?: string;
}

export interface AuditEventAgentNetwork {
  address?: string;
  /** network-type: "1" machine name, "2" IP address. */
  type?: string;
}

export interface AuditEventAgent {
  type?: CodeableConcept;
  role?: CodeableConcept[];
  who?: Reference;
  requestor: boolean;
  policy?: string[];
  network?: AuditEventAgentNetwork;
  purposeOfUse?: CodeableConcept[];
}

export interface AuditEventSource {
  site?: string;
  observer: Reference;
  type?: Coding[];
}

export interface AuditEventEntityDetail {
  type: string;
  valueString: string;
}

export interface AuditEventEntity {
  what?: Reference;
  type?: Coding;
  role?: Coding;
  description?: string;
  detail?: AuditEventEntityDetail[];
}

export interface AuditEventResource {
  resourceType: "AuditEvent";
  id?: string;
  type: Coding;
  subtype?: Coding[];
  /** audit-event-action: C R U D E. */
  action?: string;
  /** FHIR instant, UTC with milliseconds. */
  recorded: string;
  /** audit-event-outcome: "0" success, "4" minor failure, "8" serious failure. */
  outcome?: string;
  outcomeDesc?: string;
  purposeOfEvent?: CodeableConcept[];
  agent: AuditEventAgent[];
  source: AuditEventSource;
  entity?: AuditEventEntity[];
}

export interface BundleEntryRequest {
  method: "PUT";
  url: string;
}

export interface BundleEntry {
  resource: AuditEventResource;
  request: BundleEntryRequest;
}

export interface BundleResource {
  resourceType: "Bundle";
  type: "batch";
  entry: BundleEntry[];
}

// ---- Code systems ----

export const SYSTEMS = {
  eventType: "http://terminology.hl7.org/CodeSystem/audit-event-type",
  interaction: "http://hl7.org/fhir/restful-interaction",
  dicom: "http://dicom.nema.org/resources/ontology/DCM",
  participation: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
  balpAgent: "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes",
  balpEntity: "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
  sourceType: "http://terminology.hl7.org/CodeSystem/security-source-type",
  entityType: "http://terminology.hl7.org/CodeSystem/audit-entity-type",
  objectRole: "http://terminology.hl7.org/CodeSystem/object-role",
  actReason: "http://terminology.hl7.org/CodeSystem/v3-ActReason",
  resourceTypes: "http://hl7.org/fhir/resource-types",
  /** fhir-edge's own: the code of the entity holding the gateway's fields. */
  gateway: "https://fhir-edge.dev/CodeSystem/audit-entity",
} as const;

/** The entity code of the gateway's fields (system SYSTEMS.gateway). */
export const GATEWAY_ENTITY = "gateway";

/**
 * The gateway's interactions (fhir/classify) as restful-interaction codes. R4's code system has
 * no compartment search nor SMART discovery: a compartment search is a search of its type, the
 * SMART configuration a capabilities read. The interaction itself is kept in the gateway entity.
 */
const SUBTYPE: Record<string, string> = {
  read: "read", vread: "vread", update: "update", patch: "patch", delete: "delete",
  "history-instance": "history-instance", "history-type": "history-type", "history-system": "history-system",
  create: "create", "search-type": "search-type", "search-system": "search-system", "search-compartment": "search-type",
  capabilities: "capabilities", "smart-configuration": "capabilities", batch: "batch", transaction: "transaction",
  "operation-system": "operation", "operation-type": "operation", "operation-instance": "operation", operation: "operation",
};

/** audit-event-action of a restful-interaction code: searches and operations are Execute, as in BALP. */
const ACTION: Record<string, string> = {
  read: "R", vread: "R", "history-instance": "R", "history-type": "R", "history-system": "R", capabilities: "R",
  create: "C", update: "U", patch: "U", delete: "D",
  "search-type": "E", "search-system": "E", batch: "E", transaction: "E", operation: "E",
};

/** The action of a request that was never classified (refused by nginx, or before classification). */
const METHOD_ACTION: Record<string, string> = { GET: "R", HEAD: "R", POST: "C", PUT: "U", PATCH: "U", DELETE: "D" };

// ---- Pieces ----

/** `ms` since the epoch as a FHIR instant in UTC with milliseconds: 2025-12-03T14:33:20.123Z. */
export function instant(ms: number): string {
  const whole = floor(ms);
  const s = floor(whole / 1000);
  const frac = whole - s * 1000;
  return (os.date("!%Y-%m-%dT%H:%M:%S", s) as string) + format(".%03dZ", frac);
}

/** "8" for a 5xx, "4" for a refusal or a 4xx, else "0" (a shadow-deny that went through succeeded). */
export function outcomeOf(ev: AuditRecord): string {
  if (ev.status >= 500) return "8";
  if (ev.decision === "deny" || ev.status >= 400) return "4";
  return "0";
}

function coding(system: string, code: string, display: string): Coding {
  return { system, code, display };
}

function btg(): CodeableConcept {
  return { coding: [coding(SYSTEMS.actReason, "BTG", "break the glass")] };
}

function detail(out: AuditEventEntityDetail[], type: string, value: string | undefined): void {
  if (value !== undefined && value !== "") out.push({ type, valueString: value });
}

/** Numbers in detail: integers without a fraction, others with up to 3 decimals (latency_ms has 3). */
function num(n: number): string {
  if (n === floor(n)) return format("%d", n);
  return format("%.3f", n);
}

function agents(ev: AuditRecord, observer: string, action: string): AuditEventAgent[] {
  const out: AuditEventAgent[] = [];
  const user = ev.sub;
  // The client application (BALP agent:client, and the OAuth profiles' oClient when the token
  // names one), with the address it connected from.
  const clientType: Coding[] = [coding(SYSTEMS.dicom, "110153", "Source Role ID")];
  if (ev.client_id !== undefined) clientType.push(coding(SYSTEMS.dicom, "110150", "Application"));
  const client: AuditEventAgent = { type: { coding: clientType }, requestor: user === undefined };
  if (ev.client_id !== undefined) client.who = { identifier: { value: ev.client_id } };
  if (ev.ip !== undefined && ev.ip !== "") client.network = { address: ev.ip, type: "2" };
  out.push(client);
  // The server side: the gateway that answered (BALP agent:server).
  out.push({ type: { coding: [coding(SYSTEMS.dicom, "110152", "Destination Role ID")] }, who: { display: observer }, requestor: false });
  // The user (BALP oUser): the token's subject, its fhirUser type as a role, never an id.
  if (user !== undefined) {
    const userType: Coding[] = [coding(SYSTEMS.balpAgent, "UserOauthAgent", "User OAuth Agent participant")];
    if (action === "R" || action === "E") userType.push(coding(SYSTEMS.participation, "IRCP", "information recipient"));
    const u: AuditEventAgent = { type: { coding: userType }, who: { identifier: { value: user } }, requestor: true };
    const ut = ev.fhir_user_type;
    if (ut !== undefined) u.role = [{ coding: [coding(SYSTEMS.resourceTypes, ut, ut)], text: ut }];
    if (ev.break_glass === true) u.purposeOfUse = [btg()];
    out.push(u);
  }
  return out;
}

function entities(ev: AuditRecord, subtype: string | undefined): AuditEventEntity[] {
  const out: AuditEventEntity[] = [];
  const patientRef = ev.patient === undefined ? undefined : "Patient/" + ev.patient;
  if (patientRef !== undefined) {
    out.push({ what: { reference: patientRef }, type: coding(SYSTEMS.entityType, "1", "Person"), role: coding(SYSTEMS.objectRole, "1", "Patient") });
  }
  // The data: the resource in the path (once: a read of the patient in context is the patient entity).
  const rt = ev.resource_type;
  if (rt !== undefined) {
    const id = ev.resource_id;
    const ref = id === undefined ? undefined : rt + "/" + id;
    if (ref === undefined || ref !== patientRef) {
      const what: Reference = ref === undefined ? { type: rt } : { reference: ref };
      out.push({ what, type: coding(SYSTEMS.entityType, "2", "System Object"), role: coding(SYSTEMS.objectRole, "4", "Domain Resource") });
    }
  }
  // A search's query: its parameter names only (BALP's `query` would hold the values).
  const params = ev.params;
  if (subtype === "search-type" || subtype === "search-system" || (params !== undefined && params.length > 0)) {
    const q: AuditEventEntity = { type: coding(SYSTEMS.entityType, "2", "System Object"), role: coding(SYSTEMS.objectRole, "24", "Query") };
    if (params !== undefined && params.length > 0) {
      const d: AuditEventEntityDetail[] = [];
      for (let i = 0; i < params.length; i++) {
        const p = params[i];
        if (p === undefined) continue;
        // The name; with `queryValues: "hmac"`, `name=hmac:<hex>` (a canonical name has no raw `=`).
        d.push({ type: "param", valueString: p.hmac === undefined ? p.name : p.name + "=hmac:" + p.hmac });
      }
      q.detail = d;
    }
    if (rt !== undefined) q.what = { type: rt };
    out.push(q);
  }
  // BALP's transaction entity: the X-Request-ID.
  if (ev.request_id !== undefined) {
    out.push({ what: { identifier: { value: ev.request_id } }, type: coding(SYSTEMS.balpEntity, "XrequestId", "transport specific unique identifier where http X-Request-Id is used") });
  }
  // What is left of the event, so that nothing is lost.
  const g: AuditEventEntityDetail[] = [];
  detail(g, "v", num(ev.v));
  detail(g, "tenant", ev.tenant);
  detail(g, "method", ev.method);
  detail(g, "interaction", ev.interaction);
  detail(g, "operation", ev.operation);
  detail(g, "route", ev.route);
  detail(g, "request_id", ev.request_id);
  detail(g, "traceparent", ev.traceparent);
  detail(g, "issuer", ev.issuer);
  detail(g, "token_id", ev.token_id);
  detail(g, "scope", ev.scope);
  detail(g, "decision", ev.decision);
  detail(g, "reason", ev.reason);
  detail(g, "policy", ev.policy);
  detail(g, "status", num(ev.status));
  detail(g, "cache", ev.cache);
  detail(g, "ratelimit", ev.ratelimit);
  detail(g, "latency_ms", num(ev.latency_ms));
  detail(g, "ua_hash", ev.ua_hash);
  if (ev.break_glass !== undefined) detail(g, "break_glass", ev.break_glass ? "true" : "false");
  detail(g, "break_glass_reason", ev.break_glass_reason);
  out.push({ type: coding(SYSTEMS.gateway, GATEWAY_ENTITY, "fhir-edge gateway event"), detail: g });
  return out;
}

// ---- The mapping ----

/**
 * One event as a BALP-shaped AuditEvent (no id; toBundle gives it one). `observer` names the
 * gateway: source.observer.display and the server agent.
 */
export function toAuditEvent(ev: AuditRecord, observer: string): AuditEventResource {
  const interaction = ev.interaction;
  const subtype = interaction === undefined ? undefined : SUBTYPE[interaction];
  let action = subtype === undefined ? undefined : ACTION[subtype];
  if (action === undefined) action = METHOD_ACTION[ev.method] ?? "E";
  const ae: AuditEventResource = {
    resourceType: "AuditEvent",
    type: coding(SYSTEMS.eventType, "rest", "RESTful Operation"),
    action,
    recorded: instant(ev.ts),
    outcome: outcomeOf(ev),
    agent: agents(ev, observer, action),
    source: { site: ev.tenant, observer: { display: observer }, type: [coding(SYSTEMS.sourceType, "3", "Web Server")] },
    entity: entities(ev, subtype),
  };
  if (subtype !== undefined) ae.subtype = [coding(SYSTEMS.interaction, subtype, subtype)];
  if (ev.reason !== undefined) ae.outcomeDesc = ev.reason;
  if (ev.break_glass === true) ae.purposeOfEvent = [btg()];
  return ae;
}

/**
 * A `batch` Bundle that writes each event as `AuditEvent/<ids[i]>`, idempotently: every entry is
 * `PUT AuditEvent/<id>`, an update-as-create, so a retried POST of the same batch writes the same
 * resources again (a new version of each at most) and creates no duplicate, and each entry
 * succeeds or fails alone. `ids[i]` is the id of `events[i]`; a count that differs is an error.
 *
 * Why PUT (test/integration/audit/fhir-sink-medplum.test.ts): Medplum's FhirRouter over its
 * MemoryRepository creates a resource at a client-given id on PUT, and a second PUT of it writes
 * a new version, not a second resource. What does not do it: a conditional create on `_id`
 * (`ifNoneExist: "_id=<id>"`) never matches, since a batch create replaces the id with one the
 * server generates, so each retry adds a copy; R4's AuditEvent has no identifier to make the
 * condition of. A conditional create on a string put in the resource for it does work there
 * (`ifNoneExist: "entity-name:exact=<id>"` with an entity named <id> matched on the retry when
 * tried), at the price of a search per entry and of an entity made up for it. The Medplum server proper
 * (Postgres repository) refuses ids that are not UUIDs ("Invalid id"), so a sink that writes to
 * one needs UUID-shaped ids (e.g. derived from stream/seq/index by a hash) or that condition.
 */
export function toBundle(events: readonly AuditRecord[], ids: readonly string[], observer: string): BundleResource {
  if (events.length !== ids.length) error("toBundle: " + tostring(events.length) + " events but " + tostring(ids.length) + " ids");
  const entry: BundleEntry[] = [];
  for (let i = 0; i < events.length; i++) {
    const ev = events[i];
    const id = ids[i];
    if (ev === undefined || id === undefined) continue;
    const ae = toAuditEvent(ev, observer);
    ae.id = id;
    entry.push({ resource: ae, request: { method: "PUT", url: "AuditEvent/" + id } });
  }
  return { resourceType: "Bundle", type: "batch", entry };
}
