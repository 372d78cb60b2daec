/**
 * Issue #12, the cache-miss budget: only requests the cache sends to the upstream spend from
 * it, so hits are free, and a client that thrashes the cache is throttled (429, with
 * Retry-After) before the upstream sees its next request. Requests of types the tenant does
 * not cache are not held to it; a shadow miss budget only counts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perHour, seconds, tokens, type PolicyInput, type TenantProps } from "../../../policy-dsl/index.ts";
import { expectOutcome } from "../../harness/fhir.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

const received: string[] = [];
let upstream: Recorder | undefined;
let gw: OwnGateway;

function tenant(id: string, url: string, mode: "enforce" | "shadow"): TenantProps {
  return {
    id,
    pathPrefix: `/${id}`,
    upstream: { url: `${url}/${id}` },
    anonymous: true,
    cache: { ttl: { ValueSet: seconds(300) }, missBudget: { id: "misses", rate: perHour(1), burst: tokens(6), mode } },
  };
}

function policy(url: string): PolicyInput {
  return { name: "cache-miss-budget", tenants: [tenant("m", url, "enforce"), tenant("s", url, "shadow")] };
}

const get = (path: string): Promise<Response> => fetch(`${gw.url}${path}`);

beforeAll(async () => {
  upstream = await startRecorder((req) => {
    received.push(req.url ?? "");
  }, '{"resourceType":"ValueSet","status":"active"}');
  gw = await startGateway(policy(upstream.url));
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

describe("the cache-miss budget", () => {
  it("spends only on misses, then throttles the client's cacheable requests before the upstream sees them", async () => {
    const first = await get("/m/fhir/ValueSet/1");
    expect([first.status, first.headers.get("x-cache")]).toEqual([200, "MISS"]);
    for (let i = 0; i < 10; i++) {
      const hit = await get("/m/fhir/ValueSet/1");
      expect([hit.status, hit.headers.get("x-cache")]).toEqual([200, "HIT"]);
    }
    // Five more misses empty the burst of 6 (a read costs 1).
    for (let i = 2; i <= 6; i++) expect((await get(`/m/fhir/ValueSet/${i}`)).headers.get("x-cache")).toBe("MISS");
    const refused = await get("/m/fhir/ValueSet/7");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-cache")).toBe("BYPASS");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(500);
    expect(expectOutcome(refused.status, 429, refused.headers.get("content-type"), await refused.text()).issue[0]?.code).toBe("throttled");
    expect(received.filter((u) => u.startsWith("/m/")).sort()).toEqual(["/m/ValueSet/1", "/m/ValueSet/2", "/m/ValueSet/3", "/m/ValueSet/4", "/m/ValueSet/5", "/m/ValueSet/6"]);
    // While the bucket is empty every cacheable request waits, hit or not (cache/README.md).
    expect((await get("/m/fhir/ValueSet/1")).status).toBe(429);
    // A type the tenant does not cache is not held to it.
    expect((await get("/m/fhir/Patient/1")).status).toBe(200);
  });

  it("in shadow mode only counts", async () => {
    for (let i = 1; i <= 10; i++) expect((await get(`/s/fhir/ValueSet/${i}`)).status).toBe(200);
    expect(received.filter((u) => u.startsWith("/s/ValueSet/")).length).toBe(10);
    // The burst of 6 paid for six misses; the other four are would-be 429s, counted as such,
    // as the enforced tenant's refusals are.
    await new Promise((r) => setTimeout(r, 700));
    const text = await gw.metrics();
    const decisions = (tenant: string, outcome: string): number => Number(new RegExp(`fe_ratelimit_decisions_total\\{tenant="${tenant}",budget="misses",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? "0");
    expect(decisions("s", "shadow_refused")).toBe(4);
    expect(decisions("m", "refused")).toBe(2);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
