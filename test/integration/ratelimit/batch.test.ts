/**
 * A batch spends by what its entries are, not as one write: a search budget sees the searches
 * inside a batch (so batching is no way past it), a budget per class spends each class's share
 * in that class's bucket, and a budget of a class the batch has no entry of is not charged.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perHour, tokens, type PolicyInput } from "../../../policy-dsl/index.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

let upstream: Recorder | undefined;
let gw: OwnGateway;
let seen = 0;

function policy(url: string): PolicyInput {
  return {
    name: "ratelimit-batch",
    tenants: [
      {
        id: "t",
        pathPrefix: "/t",
        upstream: { url },
        anonymous: true,
        // An hour's refill is a token every 6 minutes at most: r= moves only by what is spent.
        budgets: [
          { id: "searches", classes: ["search"], rate: perHour(10), burst: tokens(10) },
          { id: "exports", classes: ["export"], rate: perHour(10), burst: tokens(10) },
          { id: "per-class", per: ["class"], rate: perHour(10), burst: tokens(100) },
        ],
      },
    ],
  };
}

const batch = (...urls: [string, string][]): string =>
  JSON.stringify({ resourceType: "Bundle", type: "batch", entry: urls.map(([method, url]) => ({ request: { method, url } })) });

const post = (body: string): Promise<Response> => fetch(`${gw.url}/t/fhir`, { method: "POST", headers: { "content-type": "application/fhir+json" }, body });
const get = (path: string): Promise<Response> => fetch(`${gw.url}/t/fhir/${path}`);

beforeAll(async () => {
  upstream = await startRecorder(() => (seen += 1), '{"resourceType":"Bundle","type":"batch-response"}');
  gw = await startGateway(policy(upstream.url));
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

describe("a batch spends by its entries' classes", () => {
  it("charges a search budget for the searches inside a batch, and each class's bucket its share", async () => {
    // 3 searches (9 tokens) and a read (1): the search budget spends 9 and is the tightest.
    const first = await post(batch(["GET", "Observation?code=a"], ["GET", "Observation?code=b"], ["GET", "Condition?code=c"], ["GET", "Patient/1"]));
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit")).toBe('"searches";r=1;t=3240');
    // The search bucket per class holds 91 now: a plain search shows it next to the search budget's 1-3.
    // One more search in a batch is more than the search budget holds: 429, nothing charged.
    const second = await post(batch(["GET", "Observation?code=d"], ["GET", "Patient/2"]));
    expect(second.status).toBe(429);
    expect(second.headers.get("ratelimit")).toBe('"searches";r=1;t=3240');
    // A batch of reads alone: no search is in it, so the search budget is not charged, and the
    // read bucket of per-class (1 spent before, 5 now) is the tightest.
    const reads = await post(batch(["GET", "Patient/1"], ["GET", "Patient/2"], ["GET", "Patient/3"], ["GET", "Patient/4"], ["GET", "Patient/5"]));
    expect(reads.status).toBe(200);
    expect(reads.headers.get("ratelimit")).toBe('"per-class";r=94;t=2160');
    // A plain read spends from the same read bucket the batch's reads did.
    expect((await get("Patient/6")).headers.get("ratelimit")).toBe('"per-class";r=93;t=2520');
    // An $export inside a batch spends from the export budget: 10 of its 10.
    const exp = await post(batch(["GET", "Patient/$export"]));
    expect(exp.status).toBe(200);
    expect(exp.headers.get("ratelimit")).toBe('"exports";r=0;t=3600');
    expect(seen).toBe(4);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
