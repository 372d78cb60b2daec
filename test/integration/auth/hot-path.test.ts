/**
 * What the hot path must not redo, checked functionally (counts, not timings): a token is
 * verified once per worker and then served from the token cache, and a repeated
 * patient-compartment search is answered from the token's verdict memo.
 */
import { describe, expect, it } from "vitest";
import { mint } from "../../harness/authz-client.ts";
import { seededPatients, stack } from "../../harness/env.ts";

async function metric(re: RegExp): Promise<number> {
  const text = await (await fetch(`${stack().admin}/metrics`)).text();
  return Number(re.exec(text)?.[1] ?? "0");
}

async function statuses(path: string, token: string, n: number, concurrency: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - i) }, async () => {
      const res = await fetch(`${stack().gateway}${path}`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      return res.status;
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

const JWT_OK = /fe_auth_validations_total\{tenant="secure",path="jwt",outcome="ok"\} ([0-9]+)/;
const CACHE_OK = /fe_auth_validations_total\{tenant="secure",path="cache",outcome="ok"\} ([0-9]+)/;
const BUILT = /fe_compartment_verdicts_built_total\{source="memo_miss"\} ([0-9]+)/;

describe("hot path: work done once", () => {
  it("N identical requests with one JWT verify its signature once (one worker), the rest are token cache hits", async () => {
    const N = 60;
    const [patient] = (await seededPatients("acme")) as [string];
    const token = await mint({ scope: "user/*.rs" });
    const [jwt0, cache0] = [await metric(JWT_OK), await metric(CACHE_OK)];
    // Reads use a validation for the long TTL (60 s in the test policy), so the run cannot outlast it.
    const got = await statuses(`/secure/fhir/Patient/${patient}`, token, N, 10);
    expect(got.filter((s) => s !== 200)).toEqual([]);
    const [jwt1, cache1] = [await metric(JWT_OK), await metric(CACHE_OK)];
    // The test stack runs one worker: exactly one verification, N - 1 hits.
    expect(jwt1 - jwt0).toBe(1);
    expect(cache1 - cache0).toBe(N - 1);
  });

  it("a repeated patient-compartment search builds no new verdict; a new query builds one", async () => {
    const [patient] = (await seededPatients("acme")) as [string];
    const token = await mint({ scope: "patient/*.rs launch/patient", patient });
    // Condition searches take the long TTL on this tenant (a route of the test policy).
    const search = `/secure/fhir/Condition?patient=${patient}`;
    const b0 = await metric(BUILT);
    expect(await statuses(search, token, 1, 1)).toEqual([200]);
    const b1 = await metric(BUILT);
    expect(b1 - b0).toBe(1);
    const again = await statuses(search, token, 40, 8);
    expect(again.filter((s) => s !== 200)).toEqual([]);
    expect(await metric(BUILT)).toBe(b1);
    // The counter does move for a search it has not seen: the memo is keyed by the raw query.
    expect(await statuses(`/secure/fhir/Condition?patient=${patient}&_count=5`, token, 1, 1)).toEqual([200]);
    expect(await metric(BUILT)).toBe(b1 + 1);
  });
});
