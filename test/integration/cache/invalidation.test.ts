/**
 * Issue #12, the cache against the real stack (Medplum upstream, oidc-provider tokens):
 * - a write through the gateway makes the next read miss and return the new version, even
 *   when the old one was cached: single creates, updates and deletes, and the write entries of
 *   a transaction Bundle;
 * - reads by id under patient scopes are checked on every hit as on a miss: the patient's own
 *   resource is cached in their partition, another patient's is a 403 whether or not the cache
 *   holds it, and the refusal's X-Cache does not tell which ids exist;
 * - two apps of one patient share the patient's entries; another patient does not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seconds, type PolicyInput } from "../../../policy-dsl/index.ts";
import { TEST_AUDIENCE } from "../../harness/auth-constants.ts";
import { mint } from "../../harness/authz-client.ts";
import { clearUpstream, seededPatients, stack, upstreamRequests } from "../../harness/env.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";

let gw: OwnGateway;
let A = "";
let B = "";
let tokenA = "";
let tokenA2 = "";
let tokenB = "";
let tokenU = "";

function policy(): PolicyInput {
  return {
    name: "cache-invalidation",
    resolution: { order: ["path"] },
    issuers: [{ id: "demo", issuer: stack().authz.issuer, audiences: [TEST_AUDIENCE], mode: "jwt" }],
    tenants: [
      {
        id: "clinic",
        pathPrefix: "/clinic",
        upstream: { url: `${stack().upstream}/acme/R4` },
        issuers: ["demo"],
        cache: { ttl: { Observation: seconds(300), Condition: seconds(300), Patient: seconds(300) } },
      },
    ],
  };
}

interface Res {
  status: number;
  cache: string | null;
  json: Record<string, unknown>;
}

async function call(path: string, token: string, method = "GET", body?: unknown): Promise<Res> {
  const r = await fetch(`${gw.url}/clinic/fhir/${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/fhir+json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, cache: r.headers.get("x-cache"), json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const obs = (patient: string, value: string, id?: string): Record<string, unknown> => ({
  resourceType: "Observation",
  ...(id === undefined ? {} : { id }),
  status: "final",
  code: { text: "cache-invalidation" },
  subject: { reference: `Patient/${patient}` },
  valueString: value,
});

function ids(bundle: Record<string, unknown>): string[] {
  return ((bundle["entry"] as { resource: { id: string } }[] | undefined) ?? []).map((e) => e.resource.id);
}

function valueOf(bundle: Record<string, unknown>, id: string): unknown {
  return ((bundle["entry"] as { resource: { id: string; valueString?: string } }[] | undefined) ?? []).find((e) => e.resource.id === id)?.resource.valueString;
}

beforeAll(async () => {
  [A, B] = (await seededPatients("acme")) as [string, string];
  tokenA = await mint({ scope: "patient/*.cruds launch/patient", patient: A });
  tokenA2 = await mint({ scope: "patient/Observation.rs launch/patient", patient: A });
  tokenB = await mint({ scope: "patient/*.rs launch/patient", patient: B });
  // Under patient scopes a Bundle may only create: the transaction test writes as a user.
  tokenU = await mint({ scope: "user/*.cruds" });
  gw = await startGateway(policy());
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

describe("invalidation on write", () => {
  it("a create, an update and a delete each make the next read miss and see the change", async () => {
    const search = `Observation?code:text=cache-invalidation&patient=${A}`;
    const before = await call(search, tokenA);
    expect(before.status).toBe(200);
    expect(before.cache).toBe("MISS");
    expect((await call(search, tokenA)).cache).toBe("HIT");

    const created = await call("Observation", tokenA, "POST", obs(A, "v1"));
    expect(created.status).toBe(201);
    const id = created.json["id"] as string;
    const afterCreate = await call(search, tokenA);
    expect(afterCreate.cache).toBe("MISS");
    expect(ids(afterCreate.json)).toContain(id);

    // The read by id is a checked read: cached in A's partition once it passed the check.
    const read1 = await call(`Observation/${id}`, tokenA);
    expect([read1.status, read1.cache, read1.json["valueString"]]).toEqual([200, "MISS", "v1"]);
    expect((await call(`Observation/${id}`, tokenA)).cache).toBe("HIT");
    expect((await call(search, tokenA)).cache).toBe("HIT");

    const updated = await call(`Observation/${id}`, tokenA, "PUT", obs(A, "v2", id));
    expect(updated.status).toBe(200);
    const read2 = await call(`Observation/${id}`, tokenA);
    expect([read2.status, read2.cache, read2.json["valueString"]]).toEqual([200, "MISS", "v2"]);
    const search2 = await call(search, tokenA);
    expect([search2.cache, valueOf(search2.json, id)]).toEqual(["MISS", "v2"]);

    expect((await call(`Observation/${id}`, tokenA, "DELETE")).status).toBeLessThan(300);
    const search3 = await call(search, tokenA);
    expect(search3.cache).toBe("MISS");
    expect(ids(search3.json)).not.toContain(id);
  });

  it("the write entries of a transaction Bundle make the next read miss and see the change (a user's partition, reads not checked)", async () => {
    const created = await call("Observation", tokenU, "POST", obs(A, "t1"));
    const id = created.json["id"] as string;
    expect((await call(`Observation/${id}`, tokenU)).cache).toBe("MISS");
    expect((await call(`Observation/${id}`, tokenU)).cache).toBe("HIT");
    const search = `Observation?code:text=cache-invalidation&patient=${A}`;
    await call(search, tokenU);
    expect((await call(search, tokenU)).cache).toBe("HIT");

    const bundle = {
      resourceType: "Bundle",
      type: "transaction",
      entry: [{ resource: obs(A, "t2", id), request: { method: "PUT", url: `Observation/${id}` } }],
    };
    const tx = await call("", tokenU, "POST", bundle);
    expect(tx.status, JSON.stringify(tx.json)).toBe(200);
    const read = await call(`Observation/${id}`, tokenU);
    expect([read.status, read.cache, read.json["valueString"]]).toEqual([200, "MISS", "t2"]);
    const again = await call(search, tokenU);
    expect([again.cache, valueOf(again.json, id)]).toEqual(["MISS", "t2"]);
  });

  it("a refused write changes nothing, so the cache keeps its entries", async () => {
    const search = `Observation?patient=${A}&_count=3`;
    await call(search, tokenA);
    expect((await call(search, tokenA)).cache).toBe("HIT");
    // Patient B's token may not write, and the body names another patient for A's.
    expect((await call("Observation", tokenB, "POST", obs(B, "no"))).status).toBe(403);
    expect((await call("Observation", tokenA, "POST", obs(B, "no"))).status).toBe(403);
    expect((await call(search, tokenA)).cache).toBe("HIT");
  });
});

describe("checked reads and partitions", () => {
  it("checks a cached read on every hit: another patient's resource is a 403 that says nothing of the cache", async () => {
    const mine = await call(`Observation?patient=${A}`, tokenA);
    const theirs = await call(`Observation?patient=${B}`, tokenB);
    const theirId = ids(theirs.json)[0]!;
    expect(ids(mine.json)).not.toContain(theirId);
    // B reads it: cached in B's partition.
    expect((await call(`Observation/${theirId}`, tokenB)).status).toBe(200);
    expect((await call(`Observation/${theirId}`, tokenB)).cache).toBe("HIT");
    // A asks for it twice: both 403, and the second does not say HIT though A's fetch is cached.
    await clearUpstream();
    const r1 = await call(`Observation/${theirId}`, tokenA);
    const r2 = await call(`Observation/${theirId}`, tokenA);
    expect([r1.status, r2.status]).toEqual([403, 403]);
    expect([r1.cache, r2.cache]).toEqual(["BYPASS", "BYPASS"]);
    // And an id that does not exist looks the same.
    const n1 = await call("Observation/does-not-exist-1", tokenA);
    const n2 = await call("Observation/does-not-exist-1", tokenA);
    expect([n1.status, n1.cache, n2.status, n2.cache]).toEqual([403, "BYPASS", 403, "BYPASS"]);
    // A's first fetch of B's resource went upstream (A's partition had nothing), the second did not.
    const reads = (await upstreamRequests()).filter((r) => r.url.endsWith(`/Observation/${theirId}`));
    expect(reads.length).toBe(1);
  });

  it("two apps of one patient share the patient's entries; another patient's token does not", async () => {
    const search = `Condition?patient=${A}`;
    const first = await call(search, tokenA);
    expect(first.status).toBe(200);
    const second = await call(search, tokenA);
    expect(second.cache).toBe("HIT");
    // tokenA2 has no Condition scope: refused before the cache, and it says BYPASS.
    expect(await call(search, tokenA2).then((r) => [r.status, r.cache])).toEqual([403, "BYPASS"]);
    const obsSearch = `Observation?patient=${A}&_count=2`;
    await call(obsSearch, tokenA);
    expect((await call(obsSearch, tokenA2)).cache).toBe("HIT");
    // B asking for A's data is refused, hit or not.
    expect((await call(obsSearch, tokenB)).status).toBe(403);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
