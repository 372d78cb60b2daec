/**
 * Cluster quotas: two gateways (separate nginx processes) spend from one budget in one real
 * redis-server (`limits.store: "redis"`), both ways: a server-side script per request (exact),
 * and local counts synced every SYNC_MS (looser, by a bound the README states and this
 * measures). Stopped Redis: each node limits alone at half the budget (`nodes: 2`), nothing
 * 500s, and the fallback is counted and logged once per interval. Redis back: the nodes use it
 * again by themselves.
 *
 * What reached the upstream is counted there, per gateway (each sends its own bundle version in
 * X-Policy-Version).
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { milliseconds, perMinute, perSecond, seconds, tokens, type PolicyInput } from "../../../policy-dsl/index.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";
import { startRedisServer, waitFor, type RedisServer } from "../../harness/redis.ts";

const RATE = 100;
const BURST = 50;
const CONNECTIONS = 16;
/**
 * Admitted cost against burst + rate x elapsed. The script runs on Redis's clock, so the two
 * nodes share one bucket exactly; 1% of the allowed total, plus one request per connection in
 * flight when the clock stops, covers the edges of the measured window.
 */
const TOLERANCE = 0.01;
const SYNC_MS = 100;
/** The mix tenant's search budget: a search costs 3, so about 10 searches a second get through. */
const SEARCH_RATE = 30;
const SEARCH_BURST = 15;
/**
 * Synced counts: between two syncs each of the W workers (here 2 nodes x 1) counts the refill as
 * its own, and at the start each sees a full bucket: up to (W - 1) x (burst + rate x sync) more.
 */
const SYNC_SLACK = (2 - 1) * (BURST + (RATE * SYNC_MS) / 1000);

let redis: RedisServer;
let upstream: Recorder | undefined;
const seen = new Map<string, number>();
const mixSeen = new Map<string, number>();
let upstreamUrl = "";

type Mode = "script" | "sync";

function policy(name: string, upstreamUrl: string, mode: Mode): PolicyInput {
  return {
    name: `${name}-${mode}`,
    // A generous timeout: on this shared 2-core machine a call can take 50 ms under load, and a
    // timeout is a fallback episode (each node's local bucket starts full). Stopped Redis
    // refuses connections at once, so the fallback tests do not wait on it.
    limits: { store: "redis", redis: { url: `${redis.url}`, nodes: 2, timeout: milliseconds(1000), retryAfter: seconds(1), ...(mode === "sync" ? { sync: milliseconds(SYNC_MS) } : {}) } },
    tenants: [
      { id: "t", pathPrefix: "/t", anonymous: true, upstream: { url: upstreamUrl }, budgets: [{ id: "global", rate: perSecond(RATE), burst: tokens(BURST) }] },
      {
        id: "mix",
        pathPrefix: "/mix",
        anonymous: true,
        upstream: { url: `${upstreamUrl}/mix` },
        budgets: [
          { id: "searches", classes: ["search"], rate: perSecond(SEARCH_RATE), burst: tokens(SEARCH_BURST) },
          { id: "reads", classes: ["read"], rate: perSecond(RATE), burst: tokens(BURST) },
        ],
      },      // A _count=1000 search costs 12: within "all", more than "capped" can ever hold.
      {
        id: "order",
        pathPrefix: "/order",
        anonymous: true,
        upstream: { url: `${upstreamUrl}/order` },
        budgets: [
          { id: "all", rate: perMinute(6), burst: tokens(20) },
          { id: "capped", classes: ["search"], rate: perMinute(6), burst: tokens(10) },
        ],
      },
    ],
  };
}

interface LoadResult {
  readonly statuses: Record<string, number>;
  readonly ms: number;
}

/** Keep-alive GETs from `connections` clients on each gateway, for `ms`, each client walking `paths`. */
async function load(gateways: readonly OwnGateway[], connections: number, ms: number, paths: readonly string[] = ["/t/fhir/Patient/1"]): Promise<LoadResult> {
  const statuses: Record<string, number> = {};
  const agents = gateways.map(() => new http.Agent({ keepAlive: true, maxSockets: connections }));
  const started = Date.now();
  const once = (g: OwnGateway, agent: http.Agent, path: string): Promise<string> =>
    new Promise((resolve) => {
      const u = new URL(g.url);
      const req = http.get({ host: u.hostname, port: u.port, path, agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(String(res.statusCode ?? 0)));
      });
      req.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
  const client = async (g: OwnGateway, agent: http.Agent, offset: number): Promise<void> => {
    for (let k = offset; Date.now() - started < ms; k++) {
      const path = paths[k % paths.length]!;
      const s = await once(g, agent, path);
      const key = paths.length === 1 ? s : `${path.split("?")[0]} ${s}`;
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
  };
  await Promise.all(gateways.flatMap((g, i) => Array.from({ length: connections }, (_, c) => client(g, agents[i]!, c))));
  const elapsed = Date.now() - started;
  for (const ag of agents) ag.destroy();
  return { statuses, ms: elapsed };
}

function admitted(): number {
  let n = 0;
  for (const v of seen.values()) n += v;
  return n;
}

async function metric(g: OwnGateway, name: string): Promise<number[]> {
  const text = await g.metrics();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name + " ") || l.startsWith(name + "{"))
    .map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)));
}

beforeAll(async () => {
  redis = await startRedisServer();
  upstream = await startRecorder((req) => {
    if ((req.url ?? "").startsWith("/mix/")) {
      const kind = (req.url ?? "").includes("?") ? "search" : "read";
      mixSeen.set(kind, (mixSeen.get(kind) ?? 0) + 1);
      return;
    }
    const v = String(req.headers["x-policy-version"] ?? "?");
    seen.set(v, (seen.get(v) ?? 0) + 1);
  }, '{"resourceType":"Patient","id":"1"}');
  upstreamUrl = upstream.url;
});

afterAll(async () => {
  await redis.stop();
  await upstream?.close();
});

describe.each(["script", "sync"] as const)("cluster budgets in Redis, %s", (mode) => {
  let a: OwnGateway;
  let b: OwnGateway;
  beforeAll(async () => {
    if (!redis.running()) await redis.start();
    redis.cli("FLUSHALL");
    a = await startGateway(policy("cluster-a", upstreamUrl, mode));
    b = await startGateway(policy("cluster-b", upstreamUrl, mode));
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it(mode === "script" ? "two gateways spend from one global budget, within 1% of what it allows" : "two gateways spend from one global budget, within the sync's stated bound", async () => {
    seen.clear();
    const r = await load([a, b], CONNECTIONS, 3000);
    const allowed = BURST + (RATE * r.ms) / 1000;
    const got = admitted();
    console.log(`cluster ${mode}: ${got} admitted of ${allowed.toFixed(1)} allowed in ${r.ms} ms (${(((got - allowed) / allowed) * 100).toFixed(2)}%), statuses ${JSON.stringify(r.statuses)}, per node ${JSON.stringify([...seen.values()])}`);
    expect(Object.keys(r.statuses).sort()).toEqual(["200", "429"]);
    expect(r.statuses["200"]).toBe(got);
    if (mode === "script") expect(Math.abs(got - allowed)).toBeLessThanOrEqual(allowed * TOLERANCE + 2 * CONNECTIONS);
    else {
      expect(got).toBeLessThanOrEqual(allowed * (1 + TOLERANCE) + SYNC_SLACK);
      expect(got).toBeGreaterThanOrEqual(allowed * (1 - TOLERANCE) - 2 * CONNECTIONS);
    }
    // Both nodes were admitted from the one bucket: neither had a budget of its own.
    expect([...seen.values()].every((n) => n > got / 4)).toBe(true);
    expect(Number(redis.cli("DBSIZE"))).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 700));
    for (const g of [a, b]) expect(await metric(g, "fe_ratelimit_fallback_total")).toEqual([0]);
    expect(a.newSeriousLines()).toEqual([]);
    expect(b.newSeriousLines()).toEqual([]);
  });

  it("keeps two budgets of mixed requests apart while each request waits on Redis", async () => {
    // Reads and searches interleave on every connection: while one request waits on Redis the
    // worker serves others, so a request that read another's budgets after its call would
    // charge or judge the wrong bucket.
    mixSeen.clear();
    const r = await load([a, b], CONNECTIONS, 2000, ["/mix/fhir/Patient/1", "/mix/fhir/Observation?code=x"]);
    const searches = mixSeen.get("search") ?? 0;
    const reads = mixSeen.get("read") ?? 0;
    const allowedSearches = (SEARCH_BURST + SEARCH_RATE * (r.ms / 1000)) / 3;
    const allowedReads = BURST + RATE * (r.ms / 1000);
    console.log(`mix ${mode}: ${searches} searches of ${allowedSearches.toFixed(1)}, ${reads} reads of ${allowedReads.toFixed(1)} in ${r.ms} ms, ${JSON.stringify(r.statuses)}`);
    expect(Object.keys(r.statuses).every((k) => k.endsWith(" 200") || k.endsWith(" 429"))).toBe(true);
    const slack = mode === "sync" ? SYNC_SLACK : 2 * CONNECTIONS;
    expect(Math.abs(searches - allowedSearches)).toBeLessThanOrEqual(allowedSearches * TOLERANCE + 2 + (mode === "sync" ? (SEARCH_BURST + SEARCH_RATE * SYNC_MS / 1000) / 3 : 0));
    expect(reads).toBeLessThanOrEqual(allowedReads * (1 + TOLERANCE) + slack);
    expect(reads).toBeGreaterThanOrEqual(allowedReads * (1 - TOLERANCE) - 2 * CONNECTIONS);
    expect(a.newSeriousLines()).toEqual([]);
    expect(b.newSeriousLines()).toEqual([]);
  });

  it("answers 403 too-costly for what one budget can never pay, even after another has refused", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await fetch(`${a.url}/order/fhir/Patient/1`)).status);
    expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true);
    expect(statuses[20]).toBe(429);
    const big = await fetch(`${a.url}/order/fhir/Observation?_count=1000`);
    expect(big.status).toBe(403);
    expect(big.headers.get("retry-after")).toBeNull();
    expect(((await big.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe("too-costly");
    expect(a.newSeriousLines()).toEqual([]);
  });

  it("with Redis stopped each node limits alone at its share, nothing 500s, and the fallback is counted and logged once per interval", async () => {
    await redis.stop();
    seen.clear();
    const r = await load([a, b], CONNECTIONS, 2500);
    const perNode = BURST / 2 + (RATE / 2) * (r.ms / 1000);
    console.log(`fallback ${mode}: per node ${JSON.stringify([...seen.values()])} of ${perNode.toFixed(1)} each in ${r.ms} ms, statuses ${JSON.stringify(r.statuses)}`);
    expect(Object.keys(r.statuses).sort()).toEqual(["200", "429"]);
    // Synced counts: until its first failed sync (one interval) a node still decides from its
    // last view, and after an idle pause that view is a full bucket: one more burst per node.
    for (const n of seen.values()) expect(Math.abs(n - perNode)).toBeLessThanOrEqual(perNode * TOLERANCE + CONNECTIONS + (mode === "sync" ? BURST : 0));
    // A search of _count=2800 costs 30: more than a node's share (25), within the budget (50).
    // Only Redis being away makes it unaffordable, so it is a 429 for the retry interval, not
    // the 403 too-costly that no wait would lift.
    const big = await fetch(`${a.url}/t/fhir/Patient?_count=2800`);
    expect(big.status).toBe(429);
    expect(big.headers.get("retry-after")).toBe("1");
    await new Promise((res) => setTimeout(res, 700));
    for (const g of [a, b]) {
      expect((await metric(g, "fe_ratelimit_fallback_total"))[0]).toBeGreaterThan(0);
      expect(await metric(g, "fe_ratelimit_redis_up")).toEqual([0]);
      // The calls in flight when Redis went away fail together (at most one per connection);
      // after that, one probe per second (retryAfter), not one per request.
      const failures = (await metric(g, "fe_ratelimit_redis_failures_total"))[0]!;
      expect(failures).toBeGreaterThan(0);
      expect(failures).toBeLessThanOrEqual(CONNECTIONS + Math.ceil(r.ms / 1000) + 1);
      expect(g.newSeriousLines()).toEqual([]);
      // Said once per 10 s per worker, however many requests fell back.
      expect(readFileSync(g.errorLog, "utf8").split("\n").filter((l) => l.includes("[warn]") && l.includes("counting locally"))).toHaveLength(1);
    }
  });

  it("when Redis is back, the nodes use it again by themselves", async () => {
    await redis.start();
    // The workers try Redis again one retryAfter (1 s) after their last failure.
    await waitFor(async () => {
      await fetch(`${a.url}/t/fhir/Patient/1`);
      await fetch(`${b.url}/t/fhir/Patient/1`);
      return Number(redis.cli("DBSIZE")) > 0;
    }, 5000);
    await new Promise((res) => setTimeout(res, 1200));
    seen.clear();
    const r = await load([a, b], CONNECTIONS, 2000);
    const got = admitted();
    // The Redis bucket was spent a little by the probes above, so at most the full allowance.
    const allowed = BURST + (RATE * r.ms) / 1000;
    console.log(`recovered ${mode}: ${got} admitted of ${allowed.toFixed(1)} allowed in ${r.ms} ms, statuses ${JSON.stringify(r.statuses)}`);
    expect(Object.keys(r.statuses).sort()).toEqual(["200", "429"]);
    expect(got).toBeLessThanOrEqual(allowed * (1 + TOLERANCE) + 2 * CONNECTIONS + (mode === "sync" ? SYNC_SLACK : 0));
    expect(got).toBeGreaterThanOrEqual(allowed * (1 - TOLERANCE) - BURST - 2 * CONNECTIONS);
    await new Promise((res) => setTimeout(res, 700));
    for (const g of [a, b]) expect(await metric(g, "fe_ratelimit_redis_up")).toEqual([1]);
    expect(a.newSeriousLines()).toEqual([]);
    expect(b.newSeriousLines()).toEqual([]);
  });
});
