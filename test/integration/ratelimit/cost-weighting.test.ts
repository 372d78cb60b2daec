/**
 * Issue #11, cost-weighting: a request spends what it costs the FHIR server, not 1.
 * - Two tenants with budgets of the same size: one's searches with _include (5 tokens each) are
 *   throttled, while the other's reads (1 each), more requests at a modest rate, all get 200.
 * - One tenant with per-client budgets: a client's $export kick-offs (10 each) are refused once
 *   its export budget is spent, while its chart reads go on, and another client's kick-off does
 *   too (its own bucket).
 * - The cost model's overrides are what is charged: a tenant's per-operation costs, a route's
 *   cost (also for a batch entry it matches), complex searches and the _count surcharge, read
 *   from the RateLimit header's `r=` (tokens left) after each request.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perHour, perMinute, perSecond, tokens, type PolicyInput } from "../../../policy-dsl/index.ts";
import { TEST_AUDIENCE } from "../../harness/auth-constants.ts";
import { forge, goodClaims, mint } from "../../harness/authz-client.ts";
import { stack } from "../../harness/env.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

const SEARCH_RATE = 20;
const SEARCH_BURST = 40;

const received: { method: string; url: string; client: string }[] = [];
let upstream: Recorder | undefined;
let gw: OwnGateway;

function tenantRequests(tenant: string): { method: string; url: string; client: string }[] {
  return received.filter((r) => r.url.startsWith(`/${tenant}/`));
}

function policy(upstreamUrl: string): PolicyInput {
  const same = [{ id: "tenant", rate: perSecond(SEARCH_RATE), burst: tokens(SEARCH_BURST) }];
  return {
    name: "ratelimit-cost-weighting",
    resolution: { order: ["path"] },
    issuers: [
      {
        id: "demo",
        issuer: stack().authz.issuer,
        audiences: [TEST_AUDIENCE],
        mode: "auto",
        introspection: { clientId: "fhir-edge-gateway", clientSecretEnv: "FHIR_EDGE_TEST_INTROSPECTION_SECRET" },
      },
    ],
    tenants: [
      { id: "searchy", pathPrefix: "/searchy", upstream: { url: `${upstreamUrl}/searchy` }, anonymous: true, budgets: same },
      { id: "ready", pathPrefix: "/ready", upstream: { url: `${upstreamUrl}/ready` }, anonymous: true, budgets: same },
      {
        id: "clinic",
        pathPrefix: "/clinic",
        upstream: { url: `${upstreamUrl}/clinic` },
        issuers: ["demo"],
        budgets: [
          // The refill is slow enough that `r=` moves only by what the test spends.
          { id: "client", per: ["client_id"], rate: perMinute(6), burst: tokens(60) },
          { id: "export", per: ["client_id"], classes: ["export"], rate: perHour(10), burst: tokens(20) },
        ],
      },
      {
        id: "priced",
        pathPrefix: "/priced",
        upstream: { url: `${upstreamUrl}/priced` },
        anonymous: true,
        costs: { operations: { $everything: 7 } },
        routes: [{ id: "conditions", match: { resourceTypes: ["Condition"] }, cost: 4 }],
        budgets: [{ id: "meter", rate: perHour(1), burst: tokens(200) }],
      },
    ],
  };
}

beforeAll(async () => {
  upstream = await startRecorder((req) => received.push({ method: req.method ?? "", url: req.url ?? "", client: String(req.headers["x-client-id"] ?? "") }));
  gw = await startGateway(policy(upstream.url), { workers: 2 });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sequential GETs on one keep-alive connection, `pauseMs` apart, until `ms` have passed. */
async function client(agent: http.Agent, path: string, ms: number, pauseMs: number): Promise<Record<string, number>> {
  const url = new URL(gw.url);
  const statuses: Record<string, number> = {};
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = await new Promise<string>((resolve) => {
      const req = http.get({ host: url.hostname, port: url.port, path, agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(String(res.statusCode ?? 0)));
      });
      req.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    statuses[s] = (statuses[s] ?? 0) + 1;
    if (pauseMs > 0) await sleep(pauseMs);
  }
  return statuses;
}

function merge(all: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of all) for (const [k, v] of Object.entries(s)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** `"id";r=N;t=M` -> { id, r, t }. */
function rateLimit(res: Response): { id: string; r: number; t: number } | undefined {
  const m = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(res.headers.get("ratelimit") ?? "");
  return m === null ? undefined : { id: m[1]!, r: Number(m[2]), t: Number(m[3]) };
}

describe("a tenant's search-heavy traffic and another tenant's reads", () => {
  it("throttles searches with _include (5 tokens) while the other tenant's reads all get 200", async () => {
    const MS = 2000;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const started = Date.now();
    const [searches, reads] = await Promise.all([
      Promise.all(Array.from({ length: 8 }, (_, i) => client(agent, `/searchy/fhir/Observation?patient=p${i}&_include=Observation:subject`, MS, 0))).then(merge),
      // About 12 reads a second: 12 tokens a second of a 20-a-second budget, and more requests
      // than the searching tenant gets through with the same budget.
      client(agent, "/ready/fhir/Patient/p1", MS, 80),
    ]);
    const elapsed = (Date.now() - started) / 1000;
    agent.destroy();
    const searched = tenantRequests("searchy").length;
    const read = tenantRequests("ready").length;
    const allowed = SEARCH_BURST + SEARCH_RATE * elapsed;
    console.log(`searches: ${JSON.stringify(searches)}, ${searched} forwarded (${searched * 5} tokens of ${allowed.toFixed(0)} allowed); reads: ${JSON.stringify(reads)}, ${read} forwarded`);
    expect(searches["429"]).toBeGreaterThan(0);
    expect(Object.keys(searches).sort()).toEqual(["200", "429"]);
    expect(searched).toBe(searches["200"]);
    // 5 tokens each: what the budget allows, over 5 (not over 1, nor over the default 3).
    expect(searched * 5).toBeLessThanOrEqual(allowed + 5);
    expect(searched * 5).toBeGreaterThan(allowed * 0.9 - 5);
    expect(Object.keys(reads)).toEqual(["200"]);
    expect(read).toBe(reads["200"]);
    // Same budget size, and the reading tenant got more requests through.
    expect(read).toBeGreaterThan(searched);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});

describe("per-client budgets within one tenant", () => {
  it("refuses a client's $export kick-offs after the export burst while its chart reads succeed", async () => {
    const token = await mint({ tenant: "clinic", scope: "system/*.rs" });
    const other = await forge(goodClaims({ tenant: "clinic", client_id: "other-app", scope: "system/*.rs" }));
    const get = (path: string, t = token): Promise<Response> => fetch(`${gw.url}/clinic/fhir/${path}`, { headers: { authorization: `Bearer ${t}`, prefer: "respond-async" } });

    // Two kick-offs (10 tokens each) fill the export budget's burst of 20.
    for (const path of ["$export", "Patient/$export"]) {
      const res = await get(path);
      expect(res.status, `${path}: ${await res.text()}`).toBe(200);
      expect(rateLimit(res)?.id).toBe("export");
    }
    const refused = await get("Group/g1/$export");
    const body = await refused.text();
    expect(refused.status, body).toBe(429);
    expect(rateLimit(refused)).toMatchObject({ id: "export", r: 0 });
    expect(JSON.parse(body)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "throttled" }] });

    // The chart: reads and searches of the same client still get through, and spend from the
    // general budget only: 60 - 2 x 10 (the refused kick-off was given back) - 1 - 3 - 3.
    const chart: [string, number][] = [
      ["Patient/p1", 39],
      ["Observation?patient=p1", 36],
      ["Condition?patient=p1", 33],
      ["Patient/p1", 32],
    ];
    for (const [path, left] of chart) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(rateLimit(res), path).toMatchObject({ id: "client", r: left });
    }
    expect((await get("$export")).status).toBe(429);
    // Another client of the tenant has buckets of its own.
    const theirs = await get("$export", other);
    expect(theirs.status, await theirs.text()).toBe(200);
    expect(rateLimit(theirs)).toMatchObject({ id: "export", r: 10 });

    const seen = tenantRequests("clinic").map((r) => `${r.client} ${r.url}`);
    expect(seen).toEqual([
      "demo-app /clinic/$export",
      "demo-app /clinic/Patient/$export",
      "demo-app /clinic/Patient/p1",
      "demo-app /clinic/Observation?patient=p1",
      "demo-app /clinic/Condition?patient=p1",
      "demo-app /clinic/Patient/p1",
      "other-app /clinic/$export",
    ]);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});

describe("the cost model's overrides", () => {
  it("charges per-operation, route, complex-search, _count and batch costs", async () => {
    const batch = {
      resourceType: "Bundle",
      type: "batch",
      entry: [
        { request: { method: "GET", url: "Patient/p1" } },
        { request: { method: "GET", url: "Observation?patient=p1" } },
        // The route's cost (4), not a search's (3).
        { request: { method: "GET", url: "Condition?patient=p1" } },
      ],
    };
    // [request, its cost]: the bucket (burst 200, 1 token an hour) loses exactly that.
    const steps: [string, number, RequestInit?][] = [
      ["Patient/p1", 1],
      // costs.operations: $everything is 7, not the default 5.
      ["Patient/p1/$everything", 7],
      // Other operations keep the default.
      ["Observation/$lastn?patient=p1", 5],
      // The route's cost (4) instead of a search's 3 or a read's 1.
      ["Condition?patient=p1", 4],
      ["Condition/c1", 4],
      ["Observation?patient=p1", 3],
      ["Observation?patient=p1&_include=Observation:subject", 5],
      ["Observation?subject.name=smith", 5],
      ["Observation?patient=p1&_revinclude=Provenance:target", 5],
      // 3 + 1 per 100 (or part of it) above 100: 150 above is 2 more.
      ["Observation?patient=p1&_count=250", 5],
      ["Observation?patient=p1&_count=1000", 12],
      ["Observation?patient=p1&_count=100", 3],
      ["", 8, { method: "POST", headers: { "content-type": "application/fhir+json" }, body: JSON.stringify(batch) }],
    ];
    let left = 200;
    for (const [path, cost, init] of steps) {
      const res = await fetch(`${gw.url}/priced/fhir/${path}`, init);
      expect(res.status, `${path}: ${await res.text()}`).toBe(200);
      left -= cost;
      expect(res.headers.get("ratelimit-policy"), path).toBe('"meter";q=200;w=720000');
      expect(rateLimit(res), path || "batch").toMatchObject({ id: "meter", r: left });
    }
    // metadata costs nothing: no bucket is touched, and no RateLimit is sent.
    const meta = await fetch(`${gw.url}/priced/fhir/metadata`);
    expect(meta.status).toBe(200);
    expect(meta.headers.get("ratelimit")).toBeNull();
    const next = await fetch(`${gw.url}/priced/fhir/Patient/p1`);
    expect(rateLimit(next)).toMatchObject({ r: left - 1 });
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
