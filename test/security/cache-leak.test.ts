/**
 * The response cache's leak test: a randomized, seeded load of 20,000 requests from 19
 * requesters of two tenants (patient-scoped apps, two apps of one patient, granular
 * scopes, users with and without a patient in context, one user with two apps), through the
 * real stack, every clinical type cached. Two independent oracles judge every response:
 *
 * - the truth, read straight from the upstream before the load: every resource a 200 carries
 *   must be one of its tenant's, identical to the upstream's, and one its requester may see;
 *   a search must hold exactly what the requester's own reading of it matches;
 * - the partitions, as the cache's contract states them (the patient under patient/ scopes,
 *   otherwise the user with the patient in context, the tenant for a shared type): a HIT is
 *   possible only after some request of the same partition asked for the same canonical URL.
 *   A HIT that no request of its partition could have filled came from another partition, even
 *   when its body happens to be one the requester may see. The first oracle alone would miss
 *   that here: this upstream answers a URL the same to everyone allowed to ask it, and checked
 *   reads are checked on every hit, so a cache with one partition for all sends no wrong body.
 *
 * Its own gateway (two workers), in front of the shared stack's recording Medplum upstream and
 * authorization server. Minted tokens all carry `sub: demo-app` (client_credentials), so the
 * distinct users are forged tokens signed with the server's own key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../../demo/prng.ts";
import { seconds, type PolicyInput } from "../../policy-dsl/index.ts";
import { TEST_AUDIENCE } from "../harness/auth-constants.ts";
import { forge, goodClaims, mint } from "../harness/authz-client.ts";
import { clearUpstream, seededPatients, stack, upstreamRequests } from "../harness/env.ts";
import { startGateway, type OwnGateway } from "../harness/gateway.ts";

type TenantId = "acme" | "globex";
const TENANTS: readonly TenantId[] = ["acme", "globex"];
const other = (t: TenantId): TenantId => (t === "acme" ? "globex" : "acme");
/** globex adds the patient in context to a compartment search that names none; acme refuses it. */
const INJECTS: Record<TenantId, boolean> = { acme: false, globex: true };
const CLINICAL = ["Patient", "Observation", "Condition", "Encounter"] as const;
const LAB = "laboratory";

const REQUESTS = 20_000;
const CONCURRENCY = 24;
const SEED = 20261203;

const CACHE = { ttl: { Observation: seconds(60), Condition: seconds(60), Patient: seconds(60), Encounter: seconds(60), ValueSet: seconds(60) } };

function policy(): PolicyInput {
  const tenant = (id: TenantId): PolicyInput["tenants"][number] => ({
    id,
    pathPrefix: `/${id}`,
    upstream: { url: `${stack().upstream}/${id}/R4` },
    issuers: ["demo"],
    cache: CACHE,
    ...(INJECTS[id] ? { compartmentSearch: "inject" as const } : {}),
  });
  return {
    name: "cache-leak",
    // The token's tenant claim must name the tenant its path resolves to.
    resolution: { order: ["claim", "path"] },
    issuers: [{ id: "demo", issuer: stack().authz.issuer, audiences: [TEST_AUDIENCE], mode: "jwt" }],
    tenants: [tenant("acme"), tenant("globex")],
  };
}


interface FhirResource {
  readonly resourceType: string;
  readonly id: string;
  readonly meta?: { readonly versionId?: string };
  readonly subject?: { readonly reference?: string };
  readonly category?: readonly { readonly coding?: readonly { readonly code?: string }[] }[];
}
interface BundleEntry {
  readonly resource?: FhirResource;
  readonly search?: { readonly mode?: string };
}
interface Bundle {
  readonly resourceType: "Bundle";
  readonly entry?: readonly BundleEntry[];
}

/** JSON with sorted keys: the same resource, however its keys were ordered. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

// ---- The truth, from the upstream itself --------------------------------------------------

interface Truth {
  readonly type: string;
  readonly id: string;
  /** The patient whose compartment holds it; undefined outside the compartment (ValueSet). */
  readonly owner?: string;
  readonly lab: boolean;
  readonly version: string;
  readonly json: string;
}

/** Per tenant, `Type/id` -> what the upstream holds. */
const truth = new Map<TenantId, Map<string, Truth>>();
const patients = new Map<TenantId, string[]>();

async function loadTruth(): Promise<void> {
  for (const t of TENANTS) {
    const byKey = new Map<string, Truth>();
    for (const type of [...CLINICAL, "ValueSet"]) {
      const res = await fetch(`${stack().upstream}/${t}/R4/${type}?_count=1000`);
      expect(res.status).toBe(200);
      const bundle = (await res.json()) as Bundle;
      for (const e of bundle.entry ?? []) {
        const r = e.resource!;
        const owner = r.resourceType === "Patient" ? r.id : r.subject?.reference?.replace(/^Patient\//, "");
        const lab = (r.category ?? []).some((c) => (c.coding ?? []).some((k) => k.code === LAB));
        byKey.set(`${r.resourceType}/${r.id}`, { type: r.resourceType, id: r.id, lab, version: r.meta?.versionId ?? "", json: canonical(r), ...(owner === undefined ? {} : { owner }) });
      }
    }
    truth.set(t, byKey);
    patients.set(t, await seededPatients(t));
  }
}

// ---- Requesters ------------------------------------------------------------------------------

interface Grant {
  /** Held to the patient compartment (patient/ scopes), or not (user/ scopes). */
  readonly kind: "patient" | "user";
  /** The types granted; undefined for all. */
  readonly types?: readonly string[];
  /** Granular: Observations of the laboratory category only. */
  readonly labOnly?: boolean;
}

interface Requester {
  readonly name: string;
  readonly tenant: TenantId;
  readonly token: string;
  readonly sub: string;
  readonly patient?: string;
  readonly grant: Grant;
}

interface RequesterSpec {
  readonly name: string;
  readonly tenant: TenantId;
  readonly scope: string;
  readonly grant: Grant;
  /** Index into the tenant's seeded patients. */
  readonly patient?: number;
  /** Forged with this sub (and client_id); minted (sub demo-app) when absent. */
  readonly sub?: string;
  readonly clientId?: string;
}

const ALL_PATIENT = "patient/*.rs launch/patient";
const SPECS: readonly RequesterSpec[] = [
  { name: "acme p1 app", tenant: "acme", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 0 },
  // A second app, and another user, for the same patient: they may share its entries.
  { name: "acme p1 caregiver", tenant: "acme", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 0, sub: "caregiver-7", clientId: "family-app" },
  { name: "acme p2 app", tenant: "acme", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 1 },
  { name: "acme p3 app", tenant: "acme", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 2 },
  { name: "acme p4 narrow", tenant: "acme", scope: "patient/Observation.rs patient/Patient.rs launch/patient", grant: { kind: "patient", types: ["Observation", "Patient"] }, patient: 3 },
  // Granular only: not held to the compartment by a patient/ grant, so partitioned by user.
  { name: "acme p5 labs", tenant: "acme", scope: `patient/Observation.rs?category=${LAB} launch/patient`, grant: { kind: "patient", types: ["Observation"], labOnly: true }, patient: 4, sub: "lab-viewer", clientId: "labs-app" },
  { name: "acme dr-ada", tenant: "acme", scope: "user/*.rs", grant: { kind: "user" }, sub: "dr-ada", clientId: "ehr" },
  // The same user through a narrower app: the same partition, and every read checked.
  { name: "acme dr-ada labs", tenant: "acme", scope: `user/Observation.rs?category=${LAB}`, grant: { kind: "user", types: ["Observation"], labOnly: true }, sub: "dr-ada", clientId: "labs-app" },
  { name: "acme dr-grace", tenant: "acme", scope: "user/*.rs", grant: { kind: "user" }, sub: "dr-grace", clientId: "ehr" },
  { name: "acme dr-alan in p2", tenant: "acme", scope: "user/*.rs launch/patient", grant: { kind: "user" }, patient: 1, sub: "dr-alan", clientId: "ehr" },
  { name: "acme minted user", tenant: "acme", scope: "user/*.rs", grant: { kind: "user" } },
  { name: "globex p1 app", tenant: "globex", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 0 },
  { name: "globex p1 caregiver", tenant: "globex", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 0, sub: "caregiver-9", clientId: "family-app" },
  { name: "globex p2 app", tenant: "globex", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 1 },
  { name: "globex p5 app", tenant: "globex", scope: ALL_PATIENT, grant: { kind: "patient" }, patient: 4 },
  { name: "globex dr-barbara", tenant: "globex", scope: "user/*.rs", grant: { kind: "user" }, sub: "dr-barbara", clientId: "ehr" },
  { name: "globex dr-ken in p3", tenant: "globex", scope: "user/*.rs launch/patient", grant: { kind: "user" }, patient: 2, sub: "dr-ken", clientId: "ehr" },
  // The same sub as acme's dr-ada and acme's minted user: the tenant keeps them apart.
  { name: "globex dr-ada", tenant: "globex", scope: "user/*.rs", grant: { kind: "user" }, sub: "dr-ada", clientId: "ehr" },
  { name: "globex minted user", tenant: "globex", scope: "user/*.rs", grant: { kind: "user" } },
];

async function requester(spec: RequesterSpec): Promise<Requester> {
  const patient = spec.patient === undefined ? undefined : patients.get(spec.tenant)![spec.patient]!;
  const base = { name: spec.name, tenant: spec.tenant, grant: spec.grant, ...(patient === undefined ? {} : { patient }) };
  if (spec.sub === undefined) {
    const token = await mint({ scope: spec.scope, tenant: spec.tenant, ...(patient === undefined ? {} : { patient }) });
    const sub = (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { sub: string }).sub;
    return { ...base, token, sub };
  }
  const claims = goodClaims({ sub: spec.sub, client_id: spec.clientId, scope: spec.scope, tenant: spec.tenant, exp: Math.floor(Date.now() / 1000) + 1800, ...(patient === undefined ? {} : { patient }) });
  return { ...base, token: await forge(claims), sub: spec.sub };
}

// ---- Probes: what is asked, as data ------------------------------------------------------

interface Probe {
  readonly tenant: TenantId;
  readonly type: string;
  /** A read (with `version`, a vread); a type search without. */
  readonly id?: string;
  readonly version?: string;
  /** Decoded name/value pairs; encoded and ordered at random when sent. */
  readonly params: readonly (readonly [string, string])[];
  /** The patient the probe is about, if any. */
  readonly about?: string;
}

function tenantProbes(t: TenantId): Probe[] {
  const out: Probe[] = [];
  const tt = truth.get(t)!;
  for (const p of patients.get(t)!) {
    const s = (type: string, params: [string, string][]): void => void out.push({ tenant: t, type, params, about: p });
    const r = (type: string, id: string, version?: string, params: [string, string][] = []): void => void out.push({ tenant: t, type, id, params, about: p, ...(version === undefined ? {} : { version }) });
    for (const type of ["Observation", "Condition", "Encounter"]) {
      s(type, [["patient", p]]);
      s(type, [["patient", `Patient/${p}`]]);
      s(type, [["subject", `Patient/${p}`]]);
    }
    s("Observation", [["patient", p], ["_count", "5"]]);
    s("Observation", [["patient", p], ["category", LAB]]);
    s("Observation", [["patient", p], ["category", LAB], ["_count", "1"]]);
    s("Observation", [["patient", p], ["_include", "Observation:encounter"]]);
    s("Patient", [["_id", p]]);
    s("Observation", [["_id", `${p}-obs2`]]);
    for (const k of [1, 2, 4, 5]) r("Observation", `${p}-obs${k}`);
    r("Observation", `${p}-obs3`, undefined, [["_format", "json"]]);
    r("Observation", `${p}-obs1`, tt.get(`Observation/${p}-obs1`)!.version);
    r("Observation", `${p}-obs4`, tt.get(`Observation/${p}-obs4`)!.version);
    r("Condition", `${p}-cond1`);
    r("Encounter", `${p}-enc1`);
    r("Patient", p);
  }
  // Searches that name no patient: refused on acme, given the patient in context on globex.
  out.push({ tenant: t, type: "Observation", params: [] });
  out.push({ tenant: t, type: "Observation", params: [["_count", "3"]] });
  out.push({ tenant: t, type: "Condition", params: [] });
  out.push({ tenant: t, type: "Patient", params: [] });
  // A shared type: one entry for the whole tenant.
  out.push({ tenant: t, type: "ValueSet", params: [] });
  out.push({ tenant: t, type: "ValueSet", params: [["_count", "2"]] });
  for (const x of tt.values()) if (x.type === "ValueSet") out.push({ tenant: t, type: "ValueSet", id: x.id, params: [] });
  return out;
}

// ---- What a requester should get ------------------------------------------------------------

type Expected =
  | { readonly status: 403; readonly reason: string; /** Refused after the cache answered (a checked read). */ readonly stored: boolean }
  | { readonly status: 200; readonly match: readonly string[]; /** At most this many of `match`, else all. */ readonly count?: number };

function granted(g: Grant, type: string): boolean {
  return g.types === undefined || g.types.includes(type);
}

/** May this requester see this resource of its tenant? */
function visible(r: Requester, x: Truth): boolean {
  if (r.grant.kind === "patient" && x.type !== "ValueSet" && x.owner !== r.patient) return false;
  if (r.grant.labOnly === true && !(x.type === "Observation" && x.lab)) return false;
  return granted(r.grant, x.type);
}

const forbidden = (reason: string, stored = false): Expected => ({ status: 403, reason, stored });

/**
 * The parameters that name the patient of each searched type's compartment, from R4's Patient
 * CompartmentDefinition plus the search parameters that are the same element: `patient`, the
 * subject restricted to Patient, and, where only `patient` is listed (Condition lists
 * `patient` and `asserter`), `subject`, the element `patient` restricts (issue #14); `_id` on
 * Patient itself.
 */
const NAMING: Record<string, readonly string[]> = { Observation: ["patient", "subject"], Condition: ["patient", "subject"], Encounter: ["patient", "subject"], Patient: ["_id"] };
const patientIn = (v: string): string => v.replace(/^Patient\//, "");

/**
 * The search as the upstream gets it: under patient scopes on globex, one that names no patient
 * has it added (`patient=`, or `_id=` on Patient). Or why it is refused before the cache.
 */
function searchOf(r: Requester, p: Probe): { readonly params: readonly (readonly [string, string])[] } | { readonly refused: string } {
  if (p.tenant !== r.tenant) return { refused: "another tenant's path" };
  if (!granted(r.grant, p.type)) return { refused: "type not granted" };
  if (r.grant.kind !== "patient" || p.id !== undefined || p.type === "ValueSet") return { params: p.params };
  const names = NAMING[p.type]!;
  const named = p.params.filter(([n]) => names.includes(n)).map(([, v]) => patientIn(v));
  if (p.params.some(([n]) => n === "_include" || n === "_revinclude")) return { refused: "reads other types" };
  if (named.some((n) => n !== r.patient)) return { refused: "names another patient" };
  if (named.length > 0) return { params: p.params };
  if (!INJECTS[p.tenant]) return { refused: "names no patient" };
  return { params: [...p.params, [p.type === "Patient" ? "_id" : "patient", r.patient!]] };
}

function expected(r: Requester, p: Probe): Expected {
  const search = searchOf(r, p);
  if ("refused" in search) return forbidden(search.refused);
  const tt = truth.get(p.tenant)!;
  if (p.id !== undefined) {
    const x = tt.get(`${p.type}/${p.id}`)!;
    // Decided on the response, which went through the cache first.
    return visible(r, x) ? { status: 200, match: [`${p.type}/${p.id}`] } : forbidden("read outside the grant", true);
  }
  if (r.grant.labOnly === true && !p.params.some(([n, v]) => n === "category" && v === LAB)) return forbidden("not the granted category");
  const match: string[] = [];
  for (const [key, x] of tt) {
    if (x.type !== p.type) continue;
    // Every parameter is one more condition the upstream applies.
    const keep = search.params.every(([n, v]) => {
      if (n === "patient" || n === "subject") return x.owner === patientIn(v);
      if (n === "_id") return x.id === v;
      if (n === "category") return v === LAB && x.lab;
      return true;
    });
    if (keep) match.push(key);
  }
  const count = search.params.find(([n]) => n === "_count")?.[1];
  return { status: 200, match, ...(count === undefined ? {} : { count: Number(count) }) };
}

/**
 * Who may share the entry, as the cache's contract states it, and the canonical URL the
 * upstream gets (an injected patient included): the model's key. Canonical as the gateway's
 * query is: names and values decoded, ordered by name.
 */
function modelKey(r: Requester, p: Probe): string {
  const shared = p.type === "ValueSet";
  const partition = shared ? "s" : r.grant.kind === "patient" && r.grant.labOnly !== true ? `p:${r.patient ?? ""}` : `u:${r.sub}|${r.patient ?? ""}`;
  const path = p.id === undefined ? p.type : p.version === undefined ? `${p.type}/${p.id}` : `${p.type}/${p.id}/_history/${p.version}`;
  const search = searchOf(r, p);
  const query = [...("params" in search ? search.params : p.params)].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${p.tenant}\n${partition}\n${path}\n${JSON.stringify(query)}`;
}

/** Every byte outside the unreserved set percent-encoded, some letters too, hex case at random. */
function encode(s: string, rand: () => number): string {
  let out = "";
  for (const ch of s) {
    if (/^[A-Za-z0-9._~-]$/.test(ch) && rand() >= 0.15) {
      out += ch;
      continue;
    }
    for (const b of Buffer.from(ch, "utf8")) {
      const hex = b.toString(16).padStart(2, "0");
      out += `%${rand() < 0.5 ? hex.toUpperCase() : hex.toLowerCase()}`;
    }
  }
  return out;
}

function urlOf(p: Probe, rand: () => number): string {
  const path = p.id === undefined ? p.type : p.version === undefined ? `${p.type}/${p.id}` : `${p.type}/${p.id}/_history/${p.version}`;
  const params = [...p.params];
  for (let i = params.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [params[i], params[j]] = [params[j]!, params[i]!];
  }
  const query = params.map(([n, v]) => `${encode(n, rand)}=${encode(v, rand)}`).join("&");
  return `/${p.tenant}/fhir/${path}${query === "" ? "" : `?${query}`}`;
}

// ---- The load --------------------------------------------------------------------------------

interface Planned {
  readonly who: number;
  readonly probe: Probe;
  readonly url: string;
  readonly expect: Expected;
  readonly key: string;
}

interface Outcome {
  readonly status: number;
  readonly cache: string;
  /** Logical clock: when it was sent, and when its response was complete. */
  readonly sent: number;
  readonly done: number;
  /** What was wrong with its body (the requester may not see it, or it is not the search's answer). */
  readonly leak?: string;
  readonly wrong?: string;
}

/** What in a 200 body the requester may not see, or undefined. */
function leakIn(r: Requester, tenant: TenantId, resources: readonly FhirResource[]): string | undefined {
  for (const res of resources) {
    const key = `${res.resourceType}/${res.id}`;
    const x = truth.get(tenant)!.get(key);
    if (x === undefined) {
      const elsewhere = truth.get(other(tenant))!.has(key) ? ` (${other(tenant)}'s)` : "";
      return `${key} is not ${tenant}'s${elsewhere}`;
    }
    if (canonical(res) !== x.json) return `${key} differs from the upstream's`;
    if (!visible(r, x)) return `${key} (of ${x.owner}) is not visible to ${r.name}`;
  }
  return undefined;
}

/** Whether the matches (a Bundle's, or a read's) are the search's answer, or why not. */
function wrongIn(e: Expected & { status: 200 }, matches: readonly string[]): string | undefined {
  const want = new Set(e.match);
  const got = new Set(matches);
  if (got.size !== matches.length) return `duplicates in ${matches.join(",")}`;
  for (const m of matches) if (!want.has(m)) return `${m} does not match`;
  const size = e.count === undefined ? want.size : Math.min(e.count, want.size);
  if (got.size !== size) return `${got.size} matches instead of ${size}`;
  return undefined;
}

/** A response against the truth: whatever status was expected, a 200's body is judged for leaks. */
function judge(r: Requester, p: Probe, e: Expected, status: number, type: string, body: string): { leak?: string; wrong?: string } {
  const statusWrong = status === e.status ? undefined : `status ${status} instead of ${e.status}`;
  if (status !== 200 && status !== 403) return { wrong: statusWrong ?? `status ${status}` };
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return { wrong: `a body that is not JSON: ${body.slice(0, 80)}` };
  }
  const d = doc as { resourceType?: string };
  if (status === 403) {
    if (d.resourceType !== "OperationOutcome" || !/^application\/fhir\+json/.test(type)) return { leak: `a 403 that is not an OperationOutcome: ${body.slice(0, 120)}` };
    return statusWrong === undefined ? {} : { wrong: statusWrong };
  }
  let resources: FhirResource[];
  let matches: string[];
  if (d.resourceType === "Bundle") {
    const entries = (doc as Bundle).entry ?? [];
    resources = entries.map((x) => x.resource).filter((x) => x !== undefined);
    matches = entries.filter((x) => x.search?.mode !== "include" && x.resource !== undefined).map((x) => `${x.resource!.resourceType}/${x.resource!.id}`);
  } else {
    resources = [doc as FhirResource];
    matches = [`${(doc as FhirResource).resourceType}/${(doc as FhirResource).id}`];
  }
  const leak = leakIn(r, p.tenant, resources);
  let wrong = statusWrong;
  if (wrong === undefined && e.status === 200) wrong = p.id !== undefined && d.resourceType === "Bundle" ? "a Bundle for a read" : wrongIn(e, matches);
  return { ...(leak === undefined ? {} : { leak }), ...(wrong === undefined ? {} : { wrong }) };
}

let gw: OwnGateway;
let who: Requester[] = [];

beforeAll(async () => {
  await loadTruth();
  who = await Promise.all(SPECS.map(requester));
  gw = await startGateway(policy(), { workers: 2 });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

describe("the response cache under a multi-tenant, multi-user load", () => {
  it("sends every requester only what it may see, and never an entry of another partition", async () => {
    // The oracle's premise: no resource id is in both tenants, and the seeded data is there.
    const [acme, globex] = [truth.get("acme")!, truth.get("globex")!];
    const clinical = (k: string): boolean => CLINICAL.some((t) => k.startsWith(`${t}/`));
    expect([...acme.keys()].filter((k) => clinical(k) && globex.has(k))).toEqual([]);
    for (const t of TENANTS) expect(patients.get(t)!.length).toBeGreaterThanOrEqual(5);
    expect(acme.size).toBeGreaterThan(40);
    // Two distinct subs at least among the minted and forged users of one tenant.
    expect(new Set(who.filter((r) => r.tenant === "acme" && r.grant.kind === "user").map((r) => r.sub)).size).toBeGreaterThanOrEqual(3);

    const rand = prng(SEED);
    const pools = new Map<TenantId, Probe[]>(TENANTS.map((t) => [t, tenantProbes(t)]));
    const plan: Planned[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const n = Math.floor(rand() * who.length);
      const r = who[n]!;
      const roll = rand();
      // Mostly its own tenant, often about its own patient; now and then another tenant's path.
      const home = pools.get(r.tenant)!;
      let pool = roll < 0.03 ? pools.get(other(r.tenant))! : home;
      if (roll >= 0.03 && roll < 0.5 && r.patient !== undefined) pool = home.filter((p) => p.about === r.patient || p.about === undefined);
      const probe = pool[Math.floor(rand() * pool.length)]!;
      plan.push({ who: n, probe, url: urlOf(probe, rand), expect: expected(r, probe), key: modelKey(r, probe) });
    }

    await clearUpstream();
    const outcomes: Outcome[] = new Array<Outcome>(REQUESTS);
    let next = 0;
    let clock = 0;
    const started = performance.now();
    const worker = async (): Promise<void> => {
      for (let i = next++; i < REQUESTS; i = next++) {
        const item = plan[i]!;
        const r = who[item.who]!;
        const sent = clock++;
        const res = await fetch(`${gw.url}${item.url}`, { headers: { authorization: `Bearer ${r.token}` } });
        const body = await res.text();
        const done = clock++;
        const verdict = judge(r, item.probe, item.expect, res.status, res.headers.get("content-type") ?? "", body);
        outcomes[i] = { status: res.status, cache: res.headers.get("x-cache") ?? "(none)", sent, done, ...verdict };
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds_ = (performance.now() - started) / 1000;

    // A HIT is possible only once a request of the same partition asked for the same canonical
    // URL and the cache stored its answer (a 200, or a checked read refused after the fetch).
    const fillers = new Map<string, number[]>();
    plan.forEach((item, i) => {
      if (item.expect.status !== 200 && !item.expect.stored) return;
      const list = fillers.get(item.key);
      if (list === undefined) fillers.set(item.key, [i]);
      else list.push(i);
    });
    const crossHits: string[] = [];
    const leaks: string[] = [];
    const wrong: string[] = [];
    const byCache = new Map<string, number>();
    const byStatus = new Map<number, number>();
    let forbiddenExpected = 0;
    const byReason = new Map<string, number>();
    let misses200 = 0;
    let bypass200 = 0;
    outcomes.forEach((o, i) => {
      const item = plan[i]!;
      const label = `${who[item.who]!.name} GET ${item.url} -> ${o.status} ${o.cache}`;
      byCache.set(o.cache, (byCache.get(o.cache) ?? 0) + 1);
      byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
      if (item.expect.status === 403 && o.status === 403) {
        forbiddenExpected++;
        byReason.set(item.expect.reason, (byReason.get(item.expect.reason) ?? 0) + 1);
      }
      if (o.status === 200 && (o.cache === "MISS" || o.cache === "EXPIRED")) misses200++;
      if (o.status === 200 && !["HIT", "MISS", "EXPIRED"].includes(o.cache)) bypass200++;
      if (o.leak !== undefined) leaks.push(`${label}: ${o.leak}`);
      if (o.wrong !== undefined) wrong.push(`${label}: ${o.wrong}`);
      if (o.cache === "HIT") {
        const filledBy = (fillers.get(item.key) ?? []).some((j) => j !== i && outcomes[j]!.sent < o.done);
        if (!filledBy) crossHits.push(`${label}: no request of its partition asked for it before`);
        else if (o.leak !== undefined || o.wrong !== undefined) crossHits.push(`${label}: ${o.leak ?? o.wrong ?? ""}`);
      }
    });
    const hits = byCache.get("HIT") ?? 0;
    const up = (await upstreamRequests()).filter((u) => /^\/(acme|globex)\/R4\//.test(u.url) && u.headers["x-policy-version"] !== stack().version);
    const storing = new Set(plan.filter((p) => p.expect.status === 200 || p.expect.stored).map((p) => p.key)).size;

    console.log(
      [
        `cache leak test: ${REQUESTS} requests from ${who.length} requesters in ${seconds_.toFixed(1)} s (${Math.round(REQUESTS / seconds_)}/s, ${CONCURRENCY} concurrent)`,
        `  X-Cache: ${[...byCache].map(([k, v]) => `${k} ${v}`).join(", ")}`,
        `  status: ${[...byStatus].map(([k, v]) => `${k} ${v}`).join(", ")} (403 as expected: ${forbiddenExpected}: ${[...byReason].map(([k, v]) => `${k} ${v}`).join(", ")})`,
        `  200s not through the cache: ${bypass200}; 200 misses: ${misses200}`,
        `  upstream requests: ${up.length} (model keys that may be stored: ${storing})`,
        `  cross-partition hits: ${crossHits.length}, leaks: ${leaks.length}, wrong answers: ${wrong.length}`,
      ].join("\n"),
    );

    expect(leaks.slice(0, 20)).toEqual([]);
    expect(wrong.slice(0, 20)).toEqual([]);
    expect(crossHits.slice(0, 20)).toEqual([]);
    expect(crossHits.length + leaks.length + wrong.length).toBe(0);
    // The cache was exercised: most answers were hits, and the upstream saw a fraction of the load.
    expect(hits / REQUESTS).toBeGreaterThan(0.5);
    expect(hits / (byStatus.get(200) ?? 1)).toBeGreaterThan(0.8);
    expect(forbiddenExpected).toBeGreaterThan(REQUESTS / 10);
    expect(bypass200).toBe(0);
    expect(up.length).toBeGreaterThanOrEqual(misses200);
    // At most one fill per stored key and TTL (60 s), a few more for lock timeouts.
    expect(up.length).toBeLessThanOrEqual(Math.ceil(storing * (1 + Math.floor(seconds_ / 60)) * 1.1));
    expect(up.length).toBeLessThan(REQUESTS / 5);
    expect(gw.newSeriousLines()).toEqual([]);
  }, 180_000);
});
