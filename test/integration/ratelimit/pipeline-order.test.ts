/**
 * Where the cost-tokens step sits in the pipeline, as a client sees it: a refused token and a
 * scope denial spend nothing, and a throttled write never reaches the upstream, not even the
 * fetch of the current version that a patient-scoped update needs. Its own gateway, in front of
 * the shared stack's recording Medplum upstream and authorization server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perHour, tokens, type PolicyInput } from "../../../policy-dsl/index.ts";
import { TEST_AUDIENCE } from "../../harness/auth-constants.ts";
import { mint } from "../../harness/authz-client.ts";
import { clearUpstream, seededPatients, stack, upstreamRequests } from "../../harness/env.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";

let gw: OwnGateway;
let A = "";
let B = "";
let token = "";

function policy(): PolicyInput {
  return {
    name: "ratelimit-pipeline-order",
    resolution: { order: ["path"] },
    issuers: [{ id: "demo", issuer: stack().authz.issuer, audiences: [TEST_AUDIENCE], mode: "jwt" }],
    tenants: [
      {
        id: "clinic",
        pathPrefix: "/clinic",
        upstream: { url: `${stack().upstream}/acme/R4` },
        issuers: ["demo"],
        // Two writes' worth, refilled once an hour: the test spends it and nothing comes back.
        budgets: [{ id: "writes", per: ["client_id"], classes: ["write"], rate: perHour(1), burst: tokens(4) }],
      },
    ],
  };
}

const obs = (patient: string, id?: string): Record<string, unknown> => ({ resourceType: "Observation", ...(id === undefined ? {} : { id }), status: "final", code: { text: "note" }, subject: { reference: `Patient/${patient}` } });

function send(path: string, method: string, body: unknown, bearer: string): Promise<Response> {
  return fetch(`${gw.url}/clinic/fhir/${path}`, { method, headers: { authorization: `Bearer ${bearer}`, "content-type": "application/fhir+json" }, body: JSON.stringify(body) });
}

beforeAll(async () => {
  [A, B] = (await seededPatients("acme")) as [string, string];
  token = await mint({ scope: "patient/*.cruds launch/patient", patient: A });
  gw = await startGateway(policy());
});

afterAll(async () => {
  await gw?.stop();
});

describe("the cost-tokens step in the pipeline", () => {
  it("charges nothing for a refused token or a scope denial, and a throttled write reaches nothing upstream", async () => {
    // Refused before the step: a bad token (401) and another patient's compartment (403).
    for (let i = 0; i < 5; i++) expect((await send("Observation", "POST", obs(A), "not-a-token")).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await send("Observation", "POST", obs(B), token)).status).toBe(403);

    // So the whole burst is still there: two creates of 2 tokens each.
    const first = await send("Observation", "POST", obs(A), token);
    expect(first.status).toBe(201);
    expect(first.headers.get("ratelimit")).toBe('"writes";r=2;t=7200');
    const id = ((await first.json()) as { id: string }).id;
    expect((await send("Observation", "POST", obs(A), token)).headers.get("ratelimit")).toBe('"writes";r=0;t=14400');

    // A patient-scoped update needs the current version from the upstream; throttled, it never asks.
    await clearUpstream();
    const update = await send(`Observation/${id}`, "PUT", obs(A, id), token);
    expect(update.status).toBe(429);
    expect(Number(update.headers.get("retry-after"))).toBeGreaterThan(3500);
    expect(await upstreamRequests()).toEqual([]);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
