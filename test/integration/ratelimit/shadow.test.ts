/**
 * Issue #11, rolling a budget out and what no budget can pay for:
 * - A shadow budget refuses nothing: its would-be 429s are forwarded and counted in
 *   fe_ratelimit_decisions_total{outcome="shadow_refused"}, and it sends no RateLimit fields
 *   (it limits nothing); next to an enforced budget, the enforced one is what the client sees.
 * - A request that costs more than an enforced budget's burst (a batch whose entries add up
 *   above it, a _count surcharge, in a query or a POST _search form) is a 403 too-costly that
 *   never reaches the upstream; a shadow budget forwards it and counts it.
 * - The decisions and fe_ratelimit_tokens_remaining are on the admin /metrics, flushed from
 *   the workers every 0.5 s (so the test polls).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perMinute, tokens, type BudgetProps, type PolicyInput, type TenantProps } from "../../../policy-dsl/index.ts";
import { expectOutcome } from "../../harness/fhir.ts";
import { anonymousTenant, startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

const received: string[] = [];
let upstream: Recorder | undefined;
let gw: OwnGateway;

function policy(url: string): PolicyInput {
  // A token every 10 s: nothing refills while a test runs.
  const soft = { id: "soft", mode: "shadow", rate: perMinute(6), burst: tokens(10) } as const;
  const tenant = (id: string, budgets: readonly BudgetProps[]): TenantProps => anonymousTenant(id, url, budgets);
  return {
    name: "ratelimit-shadow",
    tenants: [
      tenant("trial", [soft]),
      tenant("rollout", [soft, { id: "hard", rate: perMinute(6), burst: tokens(100) }]),
      tenant("costly", [{ id: "meter", rate: perMinute(6), burst: tokens(10) }]),
      tenant("costly-trial", [{ ...soft, id: "meter" }]),
    ],
  };
}

beforeAll(async () => {
  upstream = await startRecorder((req) => received.push(`${req.method} ${req.url}`), '{"resourceType":"Bundle","type":"batch-response","entry":[]}');
  gw = await startGateway(policy(upstream.url), { workers: 2 });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

/** What the upstream received for a tenant (a batch is a POST to its base, `/<tenant>`). */
const upstreamOf = (tenant: string): string[] => received.filter((r) => /^\/[^/?]+/.exec(r.split(" ")[1]!)?.[0] === `/${tenant}`);

/** The admin /metrics value of one series, or undefined while it is absent. */
function series(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Polls /metrics until every series has its value (the workers flush every 0.5 s), up to 5 s. */
async function expectMetrics(want: Record<string, number>): Promise<void> {
  const end = Date.now() + 5000;
  let got: Record<string, number | undefined> = {};
  for (;;) {
    const text = await gw.metrics();
    got = {};
    for (const k of Object.keys(want)) {
      const brace = k.indexOf("{");
      got[k] = series(text, k.slice(0, brace), k.slice(brace + 1, -1));
    }
    if (Object.keys(want).every((k) => got[k] === want[k]) || Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(got).toEqual(want);
}

const decisions = (tenant: string, budget: string, outcome: string): string => `fe_ratelimit_decisions_total{tenant="${tenant}",budget="${budget}",outcome="${outcome}"}`;
const remaining = (tenant: string, budget: string): string => `fe_ratelimit_tokens_remaining{tenant="${tenant}",budget="${budget}"}`;

function batchOf(n: number): string {
  return JSON.stringify({ resourceType: "Bundle", type: "batch", entry: Array.from({ length: n }, (_, i) => ({ request: { method: "GET", url: `Patient/p${i}` } })) });
}

const post = (path: string, body: string, ctype = "application/fhir+json"): Promise<Response> => fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": ctype }, body });

describe("shadow budgets", () => {
  it("forward their would-be 429s and count them", async () => {
    // 15 reads of a 10-token bucket: 10 it pays for, 5 it would refuse.
    for (let i = 0; i < 15; i++) {
      const res = await fetch(`${gw.url}/trial/fhir/Patient/p1`);
      expect(res.status, `read ${i}`).toBe(200);
      // It limits nothing, so it describes nothing.
      expect([res.headers.get("ratelimit"), res.headers.get("ratelimit-policy"), res.headers.get("retry-after")]).toEqual([null, null, null]);
    }
    expect(upstreamOf("trial")).toHaveLength(15);
    await expectMetrics({
      [decisions("trial", "soft", "admitted")]: 10,
      [decisions("trial", "soft", "shadow_refused")]: 5,
      [remaining("trial", "soft")]: 0,
    });
    expect((await gw.metrics()).includes('tenant="trial",budget="soft",outcome="refused"')).toBe(false);
    expect(gw.newSeriousLines()).toEqual([]);
  });

  it("next to an enforced budget: the enforced one limits and is described, the shadow one only counts", async () => {
    for (let i = 0; i < 15; i++) {
      const res = await fetch(`${gw.url}/rollout/fhir/Patient/p1`);
      expect(res.status, `read ${i}`).toBe(200);
      expect(res.headers.get("ratelimit-policy")).toBe('"hard";q=100;w=1000');
      expect(res.headers.get("ratelimit")).toMatch(new RegExp(`^"hard";r=${99 - i};t=\\d+$`));
    }
    expect(upstreamOf("rollout")).toHaveLength(15);
    await expectMetrics({
      [decisions("rollout", "hard", "admitted")]: 15,
      [decisions("rollout", "soft", "admitted")]: 10,
      [decisions("rollout", "soft", "shadow_refused")]: 5,
      [remaining("rollout", "hard")]: 85,
      [remaining("rollout", "soft")]: 0,
    });
    expect(gw.newSeriousLines()).toEqual([]);
  });
});

describe("a request that costs more than a budget's burst", () => {
  it("is a 403 too-costly that never reaches the upstream: a batch's sum, a _count surcharge, a POST _search form", async () => {
    const tooMuch: [string, () => Promise<Response>][] = [
      // 11 reads of 1 in one batch, for a burst of 10.
      ["batch of 11", () => post("/costly/fhir", batchOf(11))],
      // 3 + 9 for 900 above the threshold of 100.
      ["_count=1000", () => fetch(`${gw.url}/costly/fhir/Observation?patient=p1&_count=1000`)],
      // 3 + 8, the surcharge in the form.
      ["POST _search", () => post("/costly/fhir/Observation/_search", "patient=p1&_count=900", "application/x-www-form-urlencoded")],
    ];
    for (const [name, send] of tooMuch) {
      const res = await send();
      const text = await res.text();
      expect(res.status, `${name}: ${text}`).toBe(403);
      const oo = expectOutcome(res.status, 403, res.headers.get("content-type"), text);
      expect(oo.issue[0]?.code, name).toBe("too-costly");
      expect(res.headers.get("retry-after"), name).toBeNull();
    }
    expect(upstreamOf("costly")).toEqual([]);
    // The same budget pays for what fits in it: a batch of 3 costs 3.
    const ok = await post("/costly/fhir", batchOf(3));
    expect(ok.status, await ok.text()).toBe(200);
    expect(ok.headers.get("ratelimit")).toMatch(/^"meter";r=7;t=\d+$/);
    expect(upstreamOf("costly")).toEqual(["POST /costly"]);
    await expectMetrics({
      [decisions("costly", "meter", "too_costly")]: 3,
      [decisions("costly", "meter", "admitted")]: 1,
      [remaining("costly", "meter")]: 7,
    });
    expect(gw.newSeriousLines()).toEqual([]);
  });

  it("is forwarded and counted by a shadow budget", async () => {
    const res = await post("/costly-trial/fhir", batchOf(11));
    expect(res.status, await res.text()).toBe(200);
    expect(upstreamOf("costly-trial")).toEqual(["POST /costly-trial"]);
    await expectMetrics({ [decisions("costly-trial", "meter", "shadow_too_costly")]: 1 });
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
