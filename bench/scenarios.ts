/**
 * The benchmark scenarios: one source of truth for the k6 scripts (bench/k6/) and the h2load
 * fallback (bench/run.ts). Pure data and pure functions, no Node or k6 imports, so both
 * runtimes can load this module.
 *
 * A scenario expands deterministically into a request list; the k6 script walks that list by
 * iteration number and the fallback writes it as h2load's URI file. Same list, same budgets.
 */
import { BUDGETS, type Budget } from "./budgets.ts";

export type ScenarioId = "poc" | "chart" | "search" | "writes" | "mixed" | "cache" | "export";

export type Method = "GET" | "POST";

/**
 * Who is asking: one SMART client. h2load sends one Authorization header per run (and the k6
 * script one BEARER), so a scenario names one token per auth variant, and its scopes must allow
 * every request of the scenario: a refusal measures the gateway's 403, not its work.
 */
export interface TokenSpec {
  /** The token's tenant claim. Absent: a token every tenant that trusts the issuer accepts (a run across tenants). */
  readonly tenant?: string;
  readonly scope: string;
  /** The patient in context (the token's `patient` claim). */
  readonly patient?: string;
}

export interface ScenarioTokens {
  /** What auth-cached carries: user- or system-level scopes that allow every request. */
  readonly user: TokenSpec;
  /**
   * What auth-patient carries: patient-level scopes for the scenario's one patient. Present
   * exactly when the requests name a single patient (bench/scenarios.ts `patientsNamed`).
   */
  readonly patient?: TokenSpec;
}

export interface BenchRequest {
  readonly method: Method;
  /** Path and query from the gateway root, e.g. `/acme/fhir/Observation?patient=acme-p1`. */
  readonly path: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Scenario {
  readonly id: ScenarioId;
  readonly title: string;
  readonly tenants: readonly string[];
  readonly tokens: ScenarioTokens;
  readonly budget: Budget;
  /** The request mix, expanded for a set of patient ids per tenant. */
  readonly requests: (patients: PatientsByTenant) => BenchRequest[];
}

export type PatientsByTenant = Readonly<Record<string, readonly string[]>>;

/** The demo upstream seeds `<tenant>-p1..p5`; the static bench upstream accepts any id. */
export function defaultPatients(tenants: readonly string[], count = 5): PatientsByTenant {
  return Object.fromEntries(tenants.map((t) => [t, Array.from({ length: count }, (_, i) => `${t}-p${i + 1}`)]));
}

const base = (tenant: string): string => `/${tenant}/fhir`;

/** Opening a chart: 8-12 reads and searches for one patient, in the order an app issues them. */
function chartOpen(tenant: string, patient: string, n: number): BenchRequest[] {
  const b = base(tenant);
  const all: BenchRequest[] = [
    { method: "GET", path: `${b}/Patient/${patient}` },
    { method: "GET", path: `${b}/Observation?patient=${patient}&category=vital-signs&_sort=-date&_count=20` },
    { method: "GET", path: `${b}/Observation?patient=${patient}&category=laboratory&_count=50` },
    { method: "GET", path: `${b}/Condition?patient=${patient}&clinical-status=active` },
    { method: "GET", path: `${b}/Encounter?patient=${patient}&_sort=-date&_count=10` },
    { method: "GET", path: `${b}/MedicationRequest?patient=${patient}&status=active` },
    { method: "GET", path: `${b}/AllergyIntolerance?patient=${patient}` },
    { method: "GET", path: `${b}/Observation?patient=${patient}&category=social-history` },
    { method: "GET", path: `${b}/Immunization?patient=${patient}` },
    { method: "GET", path: `${b}/DocumentReference?patient=${patient}&_count=10` },
    { method: "GET", path: `${b}/Procedure?patient=${patient}` },
    { method: "GET", path: `${b}/CarePlan?patient=${patient}&status=active` },
  ];
  return all.slice(0, n);
}

const createBody = (tenant: string, i: number): string =>
  JSON.stringify({
    resourceType: "Observation",
    status: "final",
    category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "vital-signs" }] }],
    code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
    subject: { reference: `Patient/${tenant}-p${(i % 5) + 1}` },
    valueQuantity: { value: 60 + (i % 40), unit: "/min", system: "http://unitsofmeasure.org", code: "/min" },
  });

export const SCENARIOS: Readonly<Record<ScenarioId, Scenario>> = {
  poc: {
    id: "poc",
    title: "point-of-care: chart opens, bursts of 8-12 reads and searches for one patient",
    tenants: ["acme"],
    // A chart per patient: a patient app would hold one token per chart, which one run cannot send.
    tokens: { user: { tenant: "acme", scope: "user/*.rs" } },
    budget: BUDGETS.poc,
    requests: (p) => (p["acme"] ?? []).flatMap((id, i) => chartOpen("acme", id, 8 + (i % 5))),
  },
  chart: {
    id: "chart",
    title: "one patient's chart: the poc requests for a single patient, so one patient token serves them all",
    tenants: ["acme"],
    tokens: {
      user: { tenant: "acme", scope: "user/*.rs" },
      patient: { tenant: "acme", scope: "patient/*.rs launch/patient", patient: "acme-p1" },
    },
    budget: BUDGETS.chart,
    requests: (p) => {
      const id = (p["acme"] ?? [])[0] ?? "acme-p1";
      return [12, 8, 10, 9, 11].flatMap((n) => chartOpen("acme", id, n));
    },
  },
  search: {
    id: "search",
    title: "search-heavy: _include, chained parameters, large _count",
    tenants: ["globex"],
    tokens: { user: { tenant: "globex", scope: "user/*.rs" } },
    budget: BUDGETS.search,
    requests: (p) =>
      (p["globex"] ?? []).flatMap((id) => [
        { method: "GET" as const, path: `${base("globex")}/Observation?patient=${id}&_include=Observation:subject&_count=200` },
        { method: "GET" as const, path: `${base("globex")}/Observation?subject.name=Garcia&code=http://loinc.org|2339-0&_count=100` },
        { method: "GET" as const, path: `${base("globex")}/Encounter?patient=${id}&_include=Encounter:subject&_revinclude=Condition:encounter&_count=100` },
        { method: "GET" as const, path: `${base("globex")}/Condition?subject:Patient.gender=female&_count=500` },
      ]),
  },
  writes: {
    id: "writes",
    title: "writes: Observation creates",
    tenants: ["acme"],
    // Every create references acme-p1, so a patient app may send them (the body is checked).
    tokens: {
      user: { tenant: "acme", scope: "user/Observation.c" },
      patient: { tenant: "acme", scope: "patient/Observation.c launch/patient", patient: "acme-p1" },
    },
    budget: BUDGETS.writes,
    // h2load sends one body per run, so the write mix is creates of one shape.
    requests: () => [{ method: "POST", path: `${base("acme")}/Observation`, body: createBody("acme", 0), headers: { "Content-Type": "application/fhir+json" } }],
  },
  mixed: {
    id: "mixed",
    title: "multi-tenant mix: reads and searches across acme and globex",
    tenants: ["acme", "globex"],
    // No tenant claim: one token for both tenants, each resolved by its path.
    tokens: { user: { scope: "user/*.rs" } },
    budget: BUDGETS.mixed,
    requests: (p) =>
      ["acme", "globex"].flatMap((t) =>
        (p[t] ?? []).flatMap((id) => [
          { method: "GET" as const, path: `${base(t)}/Patient/${id}` },
          { method: "GET" as const, path: `${base(t)}/Observation?patient=${id}&_count=20` },
          { method: "GET" as const, path: `${base(t)}/Encounter?patient=${id}` },
        ]),
      ),
  },
  cache: {
    id: "cache",
    title: "cache-friendly: repeated terminology and metadata reads",
    tenants: ["acme"],
    // metadata and smart-configuration are public; ValueSet/$expand is an operation the bench policy allows with r.
    tokens: { user: { tenant: "acme", scope: "user/*.rs" } },
    budget: BUDGETS.cache,
    requests: () => [
      { method: "GET", path: `${base("acme")}/metadata` },
      { method: "GET", path: `${base("acme")}/.well-known/smart-configuration` },
      { method: "GET", path: `${base("acme")}/ValueSet/observation-category` },
      { method: "GET", path: `${base("acme")}/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/observation-category` },
      { method: "GET", path: `${base("acme")}/CodeSystem/observation-category` },
    ],
  },
  export: {
    id: "export",
    title: "$export: kick-off and status polls",
    tenants: ["globex"],
    // $export at any level needs system/*.rs; the status polls are an operation the bench policy allows with r.
    tokens: { user: { tenant: "globex", scope: "system/*.rs" } },
    budget: BUDGETS.export,
    // One kick-off, then the client polls; h2load cannot follow Content-Location, so the poll
    // URL is the fixed one the bench upstream hands out.
    requests: () => [
      { method: "GET", path: `${base("globex")}/Patient/$export?_type=Patient,Observation`, headers: { Prefer: "respond-async", Accept: "application/fhir+json" } },
      ...Array.from({ length: 9 }, () => ({ method: "GET" as const, path: `${base("globex")}/$export-poll-status?_jobId=bench-job-1` })),
    ],
  },
};

export const SCENARIO_IDS = Object.keys(SCENARIOS) as ScenarioId[];

export function isScenarioId(s: string): s is ScenarioId {
  return (SCENARIO_IDS as string[]).includes(s);
}

/** The scenario's request list, the one both drivers use. */
export function requestList(id: ScenarioId, patients?: PatientsByTenant): BenchRequest[] {
  const s = SCENARIOS[id];
  return s.requests(patients ?? defaultPatients(s.tenants));
}

/** Headers common to every request of a run (h2load takes one set per run). */
export function commonHeaders(reqs: readonly BenchRequest[]): Record<string, string> {
  const first = reqs[0]?.headers ?? {};
  const out: Record<string, string> = { Accept: "application/fhir+json" };
  for (const [k, v] of Object.entries(first)) if (reqs.every((r) => r.headers?.[k] === v)) out[k] = v;
  return out;
}

/**
 * The patients the requests are about: named in a search (`patient=`, `subject=Patient/`,
 * `subject:Patient=`, `Patient?_id=`), read (`Patient/id`), or referenced by a body's `subject`.
 * One token per run: a patient token serves a scenario only when this holds one id.
 */
export function patientsNamed(reqs: readonly BenchRequest[]): string[] {
  const ids = new Set<string>();
  const add = (id: string | undefined): void => {
    if (id !== undefined && id !== "" && !id.startsWith("$")) ids.add(decodeURIComponent(id));
  };
  for (const r of reqs) {
    const q = r.path.indexOf("?");
    const path = q < 0 ? r.path : r.path.slice(0, q);
    const query = q < 0 ? "" : r.path.slice(q + 1);
    add(/\/Patient\/([^/?]+)/.exec(path)?.[1]);
    for (const kv of query.split("&")) {
      const eq = kv.indexOf("=");
      const k = eq < 0 ? kv : kv.slice(0, eq);
      const v = eq < 0 ? "" : kv.slice(eq + 1);
      if (k === "patient" || k === "subject:Patient") add(v.replace(/^Patient\//, ""));
      else if (k === "subject" && v.startsWith("Patient/")) add(v.slice("Patient/".length));
      else if (k === "_id" && /\/Patient$/.test(path)) add(v);
    }
    if (r.body !== undefined) add(/"reference"\s*:\s*"Patient\/([^"]+)"/.exec(r.body)?.[1]);
  }
  return [...ids].sort();
}

/** The token a variant sends for a scenario, or why the variant cannot apply to it. */
export function tokenFor(id: ScenarioId, kind: "user" | "patient"): { readonly token: TokenSpec } | { readonly skip: string } {
  const s = SCENARIOS[id];
  if (kind === "user") return { token: s.tokens.user };
  if (s.tokens.patient !== undefined) return { token: s.tokens.patient };
  const named = patientsNamed(requestList(id));
  return { skip: named.length === 0 ? "its requests name no patient" : `its requests name ${named.length} patients, and one run sends one patient token` };
}
