/**
 * A real SMART client: the fhirclient library, used as a server-side app uses it after a
 * launch (a client built from the server URL and the token response, which carries the
 * patient in context), against the gateway with a token from the demo oidc-provider.
 */
import { IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";
import smart from "fhirclient";
import { beforeAll, describe, expect, it } from "vitest";
import { mint } from "../../harness/authz-client.ts";
import { seededPatients, stack } from "../../harness/env.ts";

interface Resource {
  resourceType: string;
  id?: string;
  subject?: { reference: string };
}

let A = "";
let B = "";

function app(token: string, patient: string): ReturnType<ReturnType<typeof smart>["client"]> {
  const req = new IncomingMessage(new Socket());
  req.url = "/app";
  req.headers = { host: "app.example" };
  const res = new ServerResponse(req);
  return smart(req, res).client({
    serverUrl: `${stack().gateway}/secure/fhir`,
    tokenResponse: { access_token: token, token_type: "Bearer", scope: "patient/*.rs launch/patient", patient },
  });
}

beforeAll(async () => {
  [A, B] = (await seededPatients("acme")) as [string, string];
});

describe("fhirclient through the gateway", () => {
  it("reads the patient in context and its observations, and gets a 403 HttpError for another patient", async () => {
    const token = await mint({ scope: "patient/*.rs launch/patient", patient: A });
    const client = app(token, A);
    expect(client.getPatientId()).toBe(A);

    const patient = (await client.patient.read()) as Resource;
    expect(patient).toMatchObject({ resourceType: "Patient", id: A });

    const bundle = (await client.patient.request("Observation")) as { resourceType: string; entry?: { resource: Resource }[] };
    expect(bundle.resourceType).toBe("Bundle");
    expect(bundle.entry?.length ?? 0).toBeGreaterThan(0);
    expect(new Set(bundle.entry?.map((e) => e.resource.subject?.reference))).toEqual(new Set([`Patient/${A}`]));

    const first = bundle.entry?.[0]?.resource.id ?? "";
    expect(((await client.request(`Observation/${first}`)) as Resource).id).toBe(first);

    const other = await client.request(`Observation?patient=${B}`).then(
      () => "allowed",
      (e: { status?: number }) => e.status,
    );
    expect(other).toBe(403);
  });
});
