/**
 * Issue #12, what the cache stores and for how long, as a client and the upstream see it:
 * - the policy's TTL per type (a fresh entry is a HIT, an old one EXPIRED and fetched again);
 * - what is never stored: Cache-Control no-store, private and no-cache, Set-Cookie, non-200
 *   statuses (a 404 only with notFoundTtl), types other than FHIR JSON or XML, a body without
 *   Content-Length or over the size cap;
 * - stale entries served while the upstream fails, on a tenant that allows it;
 * - one upstream request for many concurrent misses of a key (proxy_cache_lock);
 * - X-Cache BYPASS on a cached type's requests the cache does not take, none on other types;
 * - fe_cache_requests_total and fe_cache_served_bytes_total.
 *
 * The upstream is a small origin of the test's own, so each path can answer with the headers
 * a case needs, and count what reached it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kilobytes, seconds, type PolicyInput, type TenantCacheProps, type TenantProps } from "../../../policy-dsl/index.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Leave Content-Length out (chunked). */
  chunked?: boolean;
  delayMs?: number;
}

/** What each path answers (by the path after the tenant); default a small FHIR JSON body with a serial. */
const answers = new Map<string, () => Answer>();
const hits = new Map<string, number>();
let serial = 0;
let origin: http.Server;
let gw: OwnGateway;

function upstreamCount(path: string): number {
  return hits.get(path) ?? 0;
}

function startOrigin(): Promise<string> {
  origin = http.createServer((req, res) => {
    const path = (req.url ?? "").replace(/^\/[a-z]+/, "");
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const a = answers.get(path.replace(/\?.*$/, ""))?.() ?? {};
    serial += 1;
    const body = a.body ?? JSON.stringify({ resourceType: "Bundle", type: "searchset", id: `s${serial}`, entry: [] });
    const headers: Record<string, string | number> = { "content-type": "application/fhir+json", ...a.headers };
    if (a.chunked !== true) headers["content-length"] = Buffer.byteLength(body);
    const send = (): void => {
      res.writeHead(a.status ?? 200, headers);
      res.end(body);
    };
    req.resume();
    if (a.delayMs !== undefined) setTimeout(send, a.delayMs);
    else send();
  });
  origin.keepAliveTimeout = 65_000;
  return new Promise((r) => origin.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`)));
}

function tenant(id: string, url: string, cache: TenantCacheProps): TenantProps {
  return { id, pathPrefix: `/${id}`, upstream: { url: `${url}/${id}` }, anonymous: true, cache };
}

function policy(url: string): PolicyInput {
  return {
    name: "cache-freshness",
    cache: { maxEntry: kilobytes(4) },
    tenants: [
      tenant("plain", url, { ttl: { Observation: seconds(1), ValueSet: seconds(60), CodeSystem: seconds(60) } }),
      tenant("nf", url, { ttl: { ValueSet: seconds(60) }, notFoundTtl: seconds(60) }),
      tenant("stale", url, { ttl: { ValueSet: seconds(1) }, stale: true }),
    ],
  };
}

async function get(path: string, init: RequestInit = {}): Promise<{ status: number; cache: string | null; body: string }> {
  const r = await fetch(`${gw.url}${path}`, init);
  return { status: r.status, cache: r.headers.get("x-cache"), body: await r.text() };
}

/** The X-Cache of each of `n` sequential GETs of `path`. */
async function seq(path: string, n: number, init: RequestInit = {}): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) out.push((await get(path, init)).cache);
  return out;
}

beforeAll(async () => {
  gw = await startGateway(policy(await startOrigin()));
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await new Promise((r) => origin?.close(r));
});

describe("freshness", () => {
  it("serves a fresh entry as a HIT, and fetches an expired one again (EXPIRED)", async () => {
    const first = await get("/plain/fhir/Observation?code=ttl");
    const second = await get("/plain/fhir/Observation?code=ttl");
    expect([first.cache, second.cache]).toEqual(["MISS", "HIT"]);
    expect(second.body).toBe(first.body);
    expect(upstreamCount("/Observation?code=ttl")).toBe(1);
    await new Promise((r) => setTimeout(r, 2100));
    const third = await get("/plain/fhir/Observation?code=ttl");
    expect(third.cache).toBe("EXPIRED");
    expect(third.body).not.toBe(first.body);
    expect(upstreamCount("/Observation?code=ttl")).toBe(2);
  });

  it("never stores what the upstream marks no-store, private or no-cache, nor a response setting a cookie", async () => {
    const cases: [string, Record<string, string>][] = [
      ["/ValueSet/nostore", { "cache-control": "no-store" }],
      ["/ValueSet/private", { "cache-control": "max-age=600, private" }],
      ["/ValueSet/nocache", { "cache-control": "no-cache" }],
      ["/ValueSet/cookie", { "set-cookie": "session=abc; HttpOnly" }],
    ];
    for (const [path, headers] of cases) {
      answers.set(path, () => ({ headers }));
      // Not stored, and then sent around the cache (hit-for-pass) while the mark lasts.
      expect(await seq(`/plain/fhir${path}`, 3), path).toEqual(["MISS", "BYPASS", "BYPASS"]);
      expect(upstreamCount(path), path).toBe(3);
    }
    // An upstream max-age does not lengthen the policy's TTL, and public is cached as usual.
    answers.set("/Observation/maxage", () => ({ headers: { "cache-control": "public, max-age=3600" } }));
    expect(await seq("/plain/fhir/Observation/maxage", 2)).toEqual(["MISS", "HIT"]);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await seq("/plain/fhir/Observation/maxage", 1)).toEqual(["EXPIRED"]);
  });

  it("stores only 200s, and a 404 only where the policy gives it a TTL", async () => {
    for (const status of [201, 301, 400, 404, 410, 500, 503]) {
      const path = `/ValueSet/status-${status}`;
      answers.set(path, () => ({ status, body: JSON.stringify({ resourceType: "OperationOutcome", issue: [] }) }));
      const got = await Promise.all([0].map(() => get(`/plain/fhir${path}`)));
      expect(got[0]!.status).toBe(status);
      await get(`/plain/fhir${path}`);
      expect(upstreamCount(path), String(status)).toBe(2);
    }
    answers.set("/ValueSet/gone", () => ({ status: 404, body: JSON.stringify({ resourceType: "OperationOutcome", issue: [] }) }));
    expect(await seq("/nf/fhir/ValueSet/gone", 3)).toEqual(["MISS", "HIT", "HIT"]);
    expect(upstreamCount("/ValueSet/gone")).toBe(1);
  });

  it("stores FHIR JSON and XML only, with a Content-Length within the size cap", async () => {
    const cases: [string, Answer, boolean][] = [
      ["/ValueSet/xml", { headers: { "content-type": "application/fhir+xml; charset=utf-8" }, body: "<ValueSet xmlns=\"http://hl7.org/fhir\"/>" }, true],
      ["/ValueSet/json", { headers: { "content-type": "application/json" } }, true],
      ["/ValueSet/html", { headers: { "content-type": "text/html" }, body: "<p>hi</p>" }, false],
      ["/ValueSet/none", { headers: { "content-type": "" } }, false],
      ["/ValueSet/chunked", { chunked: true }, false],
      ["/ValueSet/small", { body: JSON.stringify({ resourceType: "ValueSet", text: "x".repeat(3000) }) }, true],
      ["/ValueSet/exactly", { body: JSON.stringify({ resourceType: "ValueSet", text: "" }).padEnd(4096, " ") }, true],
      ["/ValueSet/large", { body: JSON.stringify({ resourceType: "ValueSet", text: "x".repeat(5000) }) }, false],
    ];
    for (const [path, answer, stored] of cases) {
      answers.set(path, () => answer);
      expect(await seq(`/plain/fhir${path}`, 2), path).toEqual(stored ? ["MISS", "HIT"] : ["MISS", "BYPASS"]);
    }
  });
});

describe("stale entries and stampedes", () => {
  it("serves the stale entry while the upstream fails, on a tenant with stale: true", async () => {
    let failing = false;
    answers.set("/ValueSet/flaky", () => (failing ? { status: 503, body: "{}" } : {}));
    const first = await get("/stale/fhir/ValueSet/flaky");
    expect(first.cache).toBe("MISS");
    failing = true;
    await new Promise((r) => setTimeout(r, 2100));
    const during = await get("/stale/fhir/ValueSet/flaky");
    expect(during.status).toBe(200);
    expect(during.cache).toBe("STALE");
    expect(during.body).toBe(first.body);
    // Without stale, the same failure reaches the client.
    answers.set("/Observation/flaky", () => (failing ? { status: 503, body: "{}" } : {}));
    failing = false;
    await get("/plain/fhir/Observation/flaky");
    failing = true;
    await new Promise((r) => setTimeout(r, 2100));
    expect((await get("/plain/fhir/Observation/flaky")).status).toBe(503);
  });

  it("sends the requests of a key whose response is not stored around the cache for a while (hit-for-pass), so they never queue on its lock", async () => {
    answers.set("/ValueSet/private-slow", () => ({ delayMs: 150, headers: { "cache-control": "private" } }));
    expect((await get("/plain/fhir/ValueSet/private-slow")).cache).toBe("MISS");
    const start = Date.now();
    const all = await Promise.all(Array.from({ length: 10 }, async () => {
      const t = Date.now();
      const r = await get("/plain/fhir/ValueSet/private-slow");
      return { cache: r.cache, ms: Date.now() - t };
    }));
    // Through the lock, nine of them would wait for its 500 ms poll.
    expect(all.map((r) => r.cache)).toEqual(Array(10).fill("BYPASS"));
    expect(Math.max(...all.map((r) => r.ms))).toBeLessThan(450);
    expect(Date.now() - start).toBeLessThan(450);
    expect(upstreamCount("/ValueSet/private-slow")).toBe(11);
  });

  it("sends one request upstream for many concurrent misses of one key", async () => {
    answers.set("/ValueSet/slow", () => ({ delayMs: 300 }));
    const all = await Promise.all(Array.from({ length: 20 }, () => get("/plain/fhir/ValueSet/slow")));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(new Set(all.map((r) => r.body)).size).toBe(1);
    expect(upstreamCount("/ValueSet/slow")).toBe(1);
  });
});

describe("X-Cache and metrics", () => {
  it("says BYPASS for a cached type's requests the cache does not take, and nothing on other types", async () => {
    expect((await get("/plain/fhir/CodeSystem/a", { method: "HEAD" })).cache).toBe("BYPASS");
    expect((await get("/plain/fhir/CodeSystem/a", { headers: { prefer: "handling=strict" } })).cache).toBe("BYPASS");
    expect((await get("/plain/fhir/CodeSystem/a", { headers: { accept: "text/html" } })).cache).toBe("BYPASS");
    expect((await get("/plain/fhir/CodeSystem/_history")).cache).toBe("BYPASS");
    expect((await get("/plain/fhir/CodeSystem/_search", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "url=x" })).cache).toBe("BYPASS");
    expect((await get("/plain/fhir/Condition?code=1")).cache).toBeNull();
    expect((await get("/plain/fhir/Patient/1")).cache).toBeNull();
    // JSON and XML are different entries of one URL.
    expect(await seq("/plain/fhir/CodeSystem/b", 2)).toEqual(["MISS", "HIT"]);
    expect(await seq("/plain/fhir/CodeSystem/b", 2, { headers: { accept: "application/fhir+xml" } })).toEqual(["MISS", "HIT"]);
    expect(await seq("/plain/fhir/CodeSystem/b?_format=xml", 2)).toEqual(["MISS", "HIT"]);
  });

  it("counts what the cache did, and the bytes it served", async () => {
    await seq("/plain/fhir/CodeSystem/m", 3);
    await get("/plain/fhir/CodeSystem/m", { method: "HEAD" });
    await new Promise((r) => setTimeout(r, 700));
    const text = await gw.metrics();
    const value = (status: string): number => Number(new RegExp(`fe_cache_requests_total\\{tenant="plain",resource_type="CodeSystem",status="${status}"\\} (\\d+)`).exec(text)?.[1] ?? "0");
    expect(value("HIT")).toBeGreaterThanOrEqual(4);
    expect(value("MISS")).toBeGreaterThanOrEqual(4);
    expect(value("BYPASS")).toBeGreaterThanOrEqual(6);
    expect(Number(/fe_cache_served_bytes_total\{tenant="plain",resource_type="CodeSystem"\} (\d+)/.exec(text)?.[1] ?? "0")).toBeGreaterThan(100);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
