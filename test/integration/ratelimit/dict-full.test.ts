/**
 * The bucket dict at its limit (`limits.dictSize`): a budget per `sub`, and more subjects than
 * the smallest dict holds. A new bucket that does not fit fails closed for its budget (429,
 * counted as dict_full, warned once per interval), buckets already there keep working, and no
 * other client's spending is evicted to make room. Also measures how many busy buckets a
 * kilobyte holds, which the policy docs state.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kilobytes, perMinute, tokens, type PolicyInput } from "../../../policy-dsl/index.ts";
import { TEST_AUDIENCE } from "../../harness/auth-constants.ts";
import { forge, goodClaims } from "../../harness/authz-client.ts";
import { stack } from "../../harness/env.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

/** nginx's smallest shared dict is 8 pages; 32 KB holds a few hundred buckets. */
const DICT_KB = 32;
const SUBJECTS = 600;

let upstream: Recorder | undefined;
let gw: OwnGateway;
let upstreamHits = 0;

function policy(upstreamUrl: string): PolicyInput {
  return {
    name: "ratelimit-dict-full",
    resolution: { order: ["path"] },
    limits: { dictSize: kilobytes(DICT_KB) },
    issuers: [{ id: "demo", issuer: stack().authz.issuer, audiences: [TEST_AUDIENCE], mode: "jwt" }],
    tenants: [
      {
        id: "clinic",
        pathPrefix: "/clinic",
        upstream: { url: upstreamUrl },
        issuers: ["demo"],
        // A slow refill: every subject's bucket stays in debt (so in the dict) for the test.
        budgets: [{ id: "per-user", per: ["sub"], classes: ["read"], rate: perMinute(1), burst: tokens(5) }],
      },
    ],
  };
}

beforeAll(async () => {
  upstream = await startRecorder(() => (upstreamHits += 1), '{"resourceType":"Patient","id":"1"}');
  gw = await startGateway(policy(upstream.url));
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

const read = (token: string): Promise<Response> => fetch(`${gw.url}/clinic/fhir/Patient/1`, { headers: { authorization: `Bearer ${token}` } });

describe("the bucket dict at its limit", () => {
  it("refuses what needs a new bucket, keeps the buckets it has, and counts and warns", async () => {
    const subjects: string[] = [];
    for (let i = 0; i < SUBJECTS; i++) subjects.push(await forge(goodClaims({ sub: `user-${i}`, scope: "user/*.rs", tenant: "clinic" })));
    const statuses: number[] = [];
    let firstFull = -1;
    for (let i = 0; i < SUBJECTS; i++) {
      const res = await read(subjects[i]!);
      const body = await res.text();
      statuses.push(res.status);
      if (res.status === 429 && firstFull < 0) {
        firstFull = i;
        expect(res.headers.get("content-type")).toBe("application/fhir+json");
        expect(res.headers.get("retry-after")).toBe("1");
        expect(JSON.parse(body)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "throttled" }] });
      }
    }
    console.log(`dict of ${DICT_KB} KB: the first ${firstFull} subjects got a bucket (about ${Math.round((firstFull / DICT_KB) * 1024)} per MB); statuses ${JSON.stringify(Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length])))}`);
    expect(firstFull).toBeGreaterThan(50);
    expect(new Set(statuses)).toEqual(new Set([200, 429]));
    // Every refusal was a subject without a bucket; none reached the upstream.
    expect(upstreamHits).toBe(statuses.filter((s) => s === 200).length);

    // The first subjects' buckets are still there, with their spending: 1 of 5 spent, so 4 more
    // pass and the fifth is the bucket's own refusal, with its own Retry-After (about a minute).
    const early = subjects[0]!;
    for (let i = 0; i < 4; i++) expect((await read(early)).status).toBe(200);
    const own = await read(early);
    expect(own.status).toBe(429);
    expect(Number(own.headers.get("retry-after"))).toBeGreaterThan(50);

    await new Promise((r) => setTimeout(r, 700));
    const metrics = await gw.metrics();
    const full = /fe_ratelimit_decisions_total\{tenant="clinic",budget="per-user",outcome="dict_full"\} ([0-9]+)/.exec(metrics);
    expect(Number(full?.[1])).toBe(statuses.filter((s) => s === 429).length);
    // Warned once (per 10 s per worker), not per refusal.
    const warnings = readFileSync(gw.errorLog, "utf8").split("\n").filter((l) => l.includes("[warn]") && l.includes("rate-limit dict is full"));
    expect(warnings).toHaveLength(1);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
