/**
 * Issue #12, generations across nodes (`limits.store: "redis"`): two gateways, one Redis, one
 * upstream. A write through one node makes its own next read miss at once, and the other
 * node's within about two sync intervals (cache/cluster); with Redis stopped, each node still
 * invalidates on its own writes, and once Redis is back the other node catches up.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { milliseconds, seconds, type PolicyInput } from "../../../policy-dsl/index.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRedisServer, waitFor, type RedisServer } from "../../harness/redis.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

let redis: RedisServer;
let upstream: Recorder | undefined;
let a: OwnGateway;
let b: OwnGateway;
let serial = 0;

function policy(name: string, url: string): PolicyInput {
  return {
    name,
    limits: { store: "redis", redis: { url: `${redis.url}`, nodes: 2, timeout: milliseconds(500), retryAfter: seconds(1) } },
    tenants: [{ id: "c", pathPrefix: "/c", upstream: { url: `${url}/c` }, anonymous: true, cache: { ttl: { ValueSet: seconds(300) } } }],
  };
}

async function read(g: OwnGateway, path = "ValueSet/1"): Promise<{ cache: string | null; body: string }> {
  const r = await fetch(`${g.url}/c/fhir/${path}`);
  return { cache: r.headers.get("x-cache"), body: await r.text() };
}

async function write(g: OwnGateway): Promise<number> {
  const r = await fetch(`${g.url}/c/fhir/ValueSet/1`, { method: "PUT", headers: { "content-type": "application/fhir+json" }, body: JSON.stringify({ resourceType: "ValueSet", id: "1", status: "active" }) });
  await r.text();
  return r.status;
}

/** Both nodes hold the current entry of ValueSet/1. */
async function warm(): Promise<void> {
  for (const g of [a, b]) {
    await read(g);
    expect((await read(g)).cache).toBe("HIT");
  }
}

beforeAll(async () => {
  redis = await startRedisServer();
  // Every answer differs, so a test can tell a fresh fetch from a cached one.
  upstream = await startRecorder(() => ({ status: 200, body: JSON.stringify({ resourceType: "ValueSet", id: "1", serial: ++serial }) }));
  a = await startGateway(policy("cache-cluster-a", upstream.url), { workers: 2 });
  b = await startGateway(policy("cache-cluster-b", upstream.url), { workers: 2 });
  // The first sync of each node reads the cluster's counts, which are part of its keys.
  await new Promise((r) => setTimeout(r, 1500));
}, 60_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await redis.stop();
  await upstream?.close();
});

describe("cache generations in Redis", () => {
  it("a write on one node invalidates its own cache at once and the other node's within two syncs", async () => {
    await warm();
    expect(await write(a)).toBe(200);
    expect((await read(a)).cache).toBe("MISS");
    const ms = await waitFor(async () => (await read(b)).cache !== "HIT", 3000);
    console.log(`cache cluster: the other node missed ${ms} ms after the write`);
    expect(ms).toBeLessThan(2500);
    // Then both cache again.
    await warm();
    expect(Number(redis.cli("GET", "fe:gen:c\tValueSet"))).toBeGreaterThan(0);
  });

  it("without Redis each node still invalidates on its own writes, and the other catches up when it is back", async () => {
    await warm();
    await redis.stop();
    expect(await write(b)).toBe(200);
    expect((await read(b)).cache).toBe("MISS");
    // Node a cannot hear of it: its entry stays, bounded by the TTL.
    await new Promise((r) => setTimeout(r, 1200));
    expect((await read(a)).cache).toBe("HIT");
    await redis.start();
    const ms = await waitFor(async () => (await read(a)).cache !== "HIT", 5000);
    console.log(`cache cluster: after Redis came back, the other node missed in ${ms} ms`);
    expect(a.newSeriousLines()).toEqual([]);
    expect(b.newSeriousLines()).toEqual([]);
  });
});
