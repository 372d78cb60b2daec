/**
 * Issue #11, what the budgets tell the client:
 * - RateLimit-Policy (`"<id>";q=<burst>;w=<seconds to refill it>`) and RateLimit
 *   (`"<id>";r=<tokens left>;t=<seconds until full>`) on every response of a limited tenant,
 *   200s, upstream 404s and 429s alike, for the tightest budget that applied; none on a tenant
 *   without budgets, nor on a request that costs nothing.
 * - A 429 is an OperationOutcome `throttled` in application/fhir+json, with a Retry-After from
 *   the bucket (it grows with the deficit), and it never reaches the upstream.
 * - Retry-After is honest: a client that waits it out is admitted, one that comes back earlier
 *   is not; and a request that no wait could admit is a 403 too-costly, never a 429 promising a
 *   retry.
 *
 * Rates of a token every 10 s keep `r=` exact while a test runs; `t=` and Retry-After are
 * allowed the whole seconds the test has taken since the bucket was first spent from.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perMinute, perSecond, tokens, type BudgetProps, type PolicyInput, type TenantProps } from "../../../policy-dsl/index.ts";
import { expectOutcome } from "../../harness/fhir.ts";
import { anonymousTenant, startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

const received: string[] = [];
let upstream: Recorder | undefined;
let gw: OwnGateway;

function policy(url: string): PolicyInput {
  const tenant = (id: string, budgets: readonly BudgetProps[]): TenantProps => anonymousTenant(id, url, budgets);
  return {
    name: "ratelimit-headers",
    tenants: [
      tenant("two", [
        { id: "minute", rate: perMinute(6), burst: tokens(10) },
        { id: "reads", classes: ["read"], rate: perMinute(6), burst: tokens(4) },
      ]),
      tenant("free", []),
      tenant("wait", [{ id: "second", classes: ["read", "search"], rate: perSecond(1), burst: tokens(5) }]),
      // A search with _count=1000 costs 12: within "all", more than "searches" can ever hold.
      tenant("order", [
        { id: "all", rate: perMinute(6), burst: tokens(20) },
        { id: "searches", classes: ["search"], rate: perMinute(6), burst: tokens(10) },
      ]),
      tenant("reversed", [
        { id: "searches", classes: ["search"], rate: perMinute(6), burst: tokens(10) },
        { id: "all", rate: perMinute(6), burst: tokens(20) },
      ]),
    ],
  };
}

beforeAll(async () => {
  upstream = await startRecorder((req) => {
    received.push(`${req.method} ${req.url}`);
    if (req.url?.includes("missing") === true) return { status: 404, body: '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}' };
    return undefined;
  }, '{"resourceType":"Patient","id":"p1"}');
  gw = await startGateway(policy(upstream.url), { workers: 1 });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const upstreamOf = (tenant: string): string[] => received.filter((r) => r.startsWith(`GET /${tenant}/`));

interface Got {
  readonly status: number;
  readonly policy: string | null;
  readonly rateLimit: string | null;
  readonly retryAfter: string | null;
  readonly ctype: string | null;
  readonly body: string;
}

async function get(path: string): Promise<Got> {
  const res = await fetch(`${gw.url}${path}`);
  const h = res.headers;
  return { status: res.status, policy: h.get("ratelimit-policy"), rateLimit: h.get("ratelimit"), retryAfter: h.get("retry-after"), ctype: h.get("content-type"), body: await res.text() };
}

/**
 * `"id";r=<r>;t=<t>`, where t (and a Retry-After) may be short by the whole seconds since the
 * bucket's first spend: tokens refill while the test runs.
 */
function expectRateLimit(got: Got, id: string, r: number, t: number, since: number): void {
  const m = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(got.rateLimit ?? "");
  expect(m, `RateLimit: ${got.rateLimit}`).not.toBeNull();
  expect(m![1]).toBe(id);
  expect(Number(m![2]), `r of ${got.rateLimit}`).toBe(r);
  const slack = Math.ceil((Date.now() - since) / 1000);
  expect(Number(m![3]), `t of ${got.rateLimit}`).toBeLessThanOrEqual(t);
  expect(Number(m![3]), `t of ${got.rateLimit}`).toBeGreaterThanOrEqual(t - slack);
}

function expectThrottled(got: Got, retryAfter: number, since: number): void {
  const oo = expectOutcome(got.status, 429, got.ctype, got.body);
  expect(oo.issue[0]?.code).toBe("throttled");
  expect(got.retryAfter, "Retry-After").toMatch(/^\d+$/);
  const slack = Math.ceil((Date.now() - since) / 1000);
  expect(Number(got.retryAfter)).toBeLessThanOrEqual(retryAfter);
  expect(Number(got.retryAfter)).toBeGreaterThanOrEqual(Math.max(1, retryAfter - slack));
}

describe("RateLimit and RateLimit-Policy", () => {
  it("describe the tightest budget on 200s, upstream errors and 429s, and a refused request is charged to no budget", async () => {
    const since = Date.now();
    // A read spends from both budgets; "reads" has fewer tokens left (3 of 4, "minute" 9 of 10).
    // The upstream's 404 gets the headers too.
    let g = await get("/two/fhir/Patient/missing");
    expect(g.status).toBe(404);
    expect(g.policy).toBe('"reads";q=4;w=40');
    expectRateLimit(g, "reads", 3, 10, since);
    // A search spends from "minute" only: 10 - 1 - 3.
    g = await get("/two/fhir/Observation?code=a");
    expect(g.status).toBe(200);
    expect(g.policy).toBe('"minute";q=10;w=100');
    expectRateLimit(g, "minute", 6, 40, since);
    for (const [r, t] of [
      [2, 20],
      [1, 30],
      [0, 40],
    ] as const) {
      g = await get("/two/fhir/Patient/p1");
      expect(g.status).toBe(200);
      expect(g.policy).toBe('"reads";q=4;w=40');
      expectRateLimit(g, "reads", r, t, since);
    }
    // "reads" is empty: 429, with its own fields, and a token's wait (10 s) as Retry-After.
    g = await get("/two/fhir/Patient/p1");
    expectThrottled(g, 10, since);
    expect(g.policy).toBe('"reads";q=4;w=40');
    expectRateLimit(g, "reads", 0, 40, since);
    // "minute" was given its token back: it holds 3, and pays for one more search exactly.
    g = await get("/two/fhir/Observation?code=b");
    expect(g.status).toBe(200);
    expectRateLimit(g, "minute", 0, 100, since);
    // A deficit of 3 tokens: three times the wait.
    g = await get("/two/fhir/Observation?code=c");
    expectThrottled(g, 30, since);
    expect(g.policy).toBe('"minute";q=10;w=100');
    expectRateLimit(g, "minute", 0, 100, since);
    // metadata costs nothing: no budget applied, so no fields.
    g = await get("/two/fhir/metadata");
    expect(g.status).toBe(200);
    expect([g.policy, g.rateLimit]).toEqual([null, null]);
    // What reached the upstream: the admitted requests, and no 429.
    expect(upstreamOf("two")).toEqual([
      "GET /two/Patient/missing",
      "GET /two/Observation?code=a",
      "GET /two/Patient/p1",
      "GET /two/Patient/p1",
      "GET /two/Patient/p1",
      "GET /two/Observation?code=b",
      "GET /two/metadata",
    ]);
    expect(gw.newSeriousLines()).toEqual([]);
  });

  it("are absent on a tenant without budgets", async () => {
    for (const path of ["/free/fhir/Patient/p1", "/free/fhir/Observation?code=a", "/free/fhir/Patient/missing"]) {
      const g = await get(path);
      expect(g.status).toBeLessThan(500);
      expect([g.policy, g.rateLimit, g.retryAfter], path).toEqual([null, null, null]);
    }
    expect(gw.newSeriousLines()).toEqual([]);
  });
});

describe("Retry-After", () => {
  it("grows with the deficit, and admits a client that waits it out and no one earlier", async () => {
    // 5 tokens, 1 a second: five reads empty the bucket.
    const since = Date.now();
    for (let i = 0; i < 5; i++) expect((await get("/wait/fhir/Patient/p1")).status).toBe(200);
    // What each would have to wait, from its own cost: a read 1, a search 3, an _include search 5.
    expectThrottled(await get("/wait/fhir/Patient/p1"), 1, since);
    const search = "/wait/fhir/Observation?code=a";
    const refused = await get(search);
    const at = Date.now();
    expectThrottled(refused, 3, since);
    expectThrottled(await get("/wait/fhir/Observation?code=a&_include=Observation:subject"), 5, since);
    const wait = Number(refused.retryAfter) * 1000;
    // At once, and half a second early: still refused, and told how much longer.
    expectThrottled(await get(search), 3, since);
    await sleep(at + wait - 500 - Date.now());
    const early = await get(search);
    expectThrottled(early, 1, since);
    // Exactly Retry-After after the 429: admitted.
    await sleep(at + wait - Date.now());
    const admitted = await get(search);
    expect(admitted.status, admitted.body).toBe(200);
    // Five reads and the one search: none of the 429s reached the upstream.
    expect(upstreamOf("wait")).toEqual([...Array.from({ length: 5 }, () => "GET /wait/Patient/p1"), `GET /wait/Observation?code=a`]);
    expect(gw.newSeriousLines()).toEqual([]);
  });

  it("is never promised for a request no wait can admit: more than a budget's burst is a 403, whichever budget is listed first", async () => {
    // 12 tokens: "all" (20) could pay for it after a wait, "searches" (10) never.
    for (const tenant of ["reversed", "order"]) {
      // Empty "all" with reads ("searches" does not see them).
      const since = Date.now();
      for (let i = 0; i < 20; i++) expect((await get(`/${tenant}/fhir/Patient/p1`)).status, `${tenant} read ${i}`).toBe(200);
      expectThrottled(await get(`/${tenant}/fhir/Patient/p1`), 10, since);
      const g = await get(`/${tenant}/fhir/Observation?code=a&_count=1000`);
      expect(g.status, `${tenant}: Retry-After ${g.retryAfter}, ${g.body}`).toBe(403);
      const oo = expectOutcome(g.status, 403, g.ctype, g.body);
      expect(oo.issue[0]?.code, tenant).toBe("too-costly");
      expect(g.retryAfter, tenant).toBeNull();
      expect(upstreamOf(tenant).filter((r) => r.includes("Observation"))).toEqual([]);
    }
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
