/**
 * Issue #12's property "every rejected input is rejected with a 400 and never forwarded",
 * through the real nginx: 10,000 generated queries, each with at least one fault the canonical
 * query refuses (an invalid percent sequence, double encoding, invalid UTF-8, NUL or another
 * control character, `;` as a separator, a name over 128 bytes, more parameters than the
 * policy's maximum, a repeated _count/_format/_sort/_summary/_elements, a _count that is not a
 * non-negative integer), mixed into valid parameters in random places. Each must be a 400
 * OperationOutcome, on a cached type, and the recording upstream must see none of them.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seconds, type PolicyInput } from "../../policy-dsl/index.ts";
import { startGateway, type OwnGateway } from "../harness/gateway.ts";
import { rawRequest } from "../harness/raw-http.ts";
import { startRecorder, type Recorder } from "../harness/recorder.ts";

const N = 10_000;
const CONCURRENCY = 32;
const MAX_PARAMS = 20;

let gw: OwnGateway;
let upstream: Recorder | undefined;
const reached: string[] = [];

const hex = fc.constantFrom(..."0123456789abcdefABCDEF".split(""));
const nameChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz_-".split(""));
const valueChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-.:/|".split(""));
const goodName = fc.array(nameChar, { minLength: 1, maxLength: 10 }).map((cs) => cs.join(""));
const goodValue = fc.oneof(
  fc.array(valueChar, { minLength: 0, maxLength: 12 }).map((cs) => cs.join("")),
  fc.tuple(hex, hex).map(([a, b]) => `%${a}${b}`.replace(/%[0-7][0-9a-fA-F]/, "%41")),
);
const good = fc.tuple(goodName, goodValue).filter(([n]) => !["_count", "_format", "_sort", "_summary", "_elements"].includes(n)).map(([n, v]) => `${n}=${v}`);

/** One piece that makes the whole query a 400, whatever surrounds it. */
const fault = fc.oneof(
  fc.tuple(goodName, fc.constantFrom("%", "%4", "%zz", "%g1", "%-1", "%%")).map(([n, v]) => `${n}=a${v}`),
  fc.tuple(goodName, hex, hex).map(([n, a, b]) => `${n}=%25${a}${b}`),
  fc.tuple(goodName, fc.constantFrom("%C3%28", "%FF", "%E2%82", "%80", "%F0%9F%98")).map(([n, v]) => `${n}=x${v}`),
  fc.tuple(goodName, fc.constantFrom("%00", "%01", "%0A", "%0D", "%1F", "%7F")).map(([n, v]) => `${n}=x${v}y`),
  fc.tuple(goodName, goodName).map(([a, b]) => `${a}=1;${b}=2`),
  fc.integer({ min: 129, max: 300 }).map((n) => `${"n".repeat(n)}=1`),
  fc.constantFrom("_count", "_format", "_sort", "_summary", "_elements").map((n) => `${n}=a&${n}=b`),
  fc.constantFrom("-1", "1.5", "abc", "0x10", "1e3", "", "+5", "%2D1").map((v) => `_count=${v}`),
);

const rejected = fc
  .tuple(fc.array(good, { maxLength: 6 }), fault, fc.nat(6), fc.boolean())
  .map(([goods, bad, at, many]) => {
    const pieces = [...goods];
    pieces.splice(Math.min(at, pieces.length), 0, bad);
    // Past the policy's maximum, with or without another fault.
    if (many) while (pieces.length <= MAX_PARAMS) pieces.push(`p${pieces.length}=1`);
    return pieces.join("&");
  });

function policy(url: string): PolicyInput {
  return {
    name: "query-rejections",
    limits: { maxQueryParams: MAX_PARAMS },
    tenants: [{ id: "q", pathPrefix: "/q", upstream: { url: `${url}/q` }, anonymous: true, cache: { ttl: { Observation: seconds(60) } } }],
  };
}

beforeAll(async () => {
  upstream = await startRecorder((req) => {
    reached.push(req.url ?? "");
  });
  gw = await startGateway(policy(upstream.url));
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

describe("rejected queries through nginx", () => {
  it(`answers ${N} generated faulty queries with a 400 OperationOutcome, and forwards none`, async () => {
    const queries = fc.sample(rejected, { numRuns: N, seed: 12 });
    const wrong: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < queries.length) {
        const q = queries[next++]!;
        // Raw bytes on the wire: fetch would re-encode what the test means to send.
        const r = await rawRequest(gw.port, `GET /q/fhir/Observation?${q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        if (r.status !== 400 || !/^application\/fhir\+json/.test(r.headers["content-type"] ?? "") || !r.body.includes('"OperationOutcome"')) wrong.push(`${r.status} ${q}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(reached).toEqual([]);
    // And a valid query still goes through, so the upstream is really listening.
    const ok = await rawRequest(gw.port, "GET /q/fhir/Observation?code=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    expect(ok.status).toBe(200);
    expect(reached).toEqual(["/q/Observation?code=1"]);
    expect(gw.newSeriousLines()).toEqual([]);
  }, 180_000);
});
