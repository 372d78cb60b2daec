/**
 * A deploy does not refill anyone's budget: the buckets live in the fe_ratelimit zone, which
 * nginx keeps across a reload while limits.dictSize stays the same. A new dictSize is a new
 * zone, and every bucket starts full, as the README says.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kilobytes, perHour, tokens, type PolicyInput } from "../../../policy-dsl/index.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";

let upstream: Recorder | undefined;
let gw: OwnGateway;

function policy(name: string, dictKb: number): PolicyInput {
  return {
    name,
    limits: { dictSize: kilobytes(dictKb) },
    tenants: [{ id: "t", pathPrefix: "/t", anonymous: true, upstream: { url: upstream!.url }, budgets: [{ id: "hourly", classes: ["read"], rate: perHour(1), burst: tokens(3) }] }],
  };
}

const read = async (): Promise<number> => (await fetch(`${gw.url}/t/fhir/Patient/1`)).status;

beforeAll(async () => {
  upstream = await startRecorder(() => undefined, '{"resourceType":"Patient","id":"1"}');
  gw = await startGateway(policy("reload-a", 1024));
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

describe("budgets across a reload", () => {
  it("keeps every bucket's spending through a reload, and starts afresh with a new dictSize", async () => {
    expect([await read(), await read(), await read(), await read()]).toEqual([200, 200, 200, 429]);
    const v2 = await gw.reload(policy("reload-b", 1024));
    expect((await (await fetch(`${gw.admin}/healthz`)).json()) as { version: string }).toMatchObject({ version: v2 });
    // Same zone: still spent.
    expect(await read()).toBe(429);
    await gw.reload(policy("reload-c", 2048));
    // A new zone: a full bucket.
    expect([await read(), await read(), await read(), await read()]).toEqual([200, 200, 200, 429]);
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
