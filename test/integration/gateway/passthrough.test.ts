import { beforeEach, describe, expect, it } from "vitest";
import { clearUpstream, seededPatients, stack, upstreamRequests } from "../../harness/env.ts";
import { expectOutcome } from "../../harness/fhir.ts";
import { rawRequest } from "../../harness/raw-http.ts";

interface Bundle {
  resourceType: string;
  type: string;
  entry?: { resource: { resourceType: string; id: string; subject?: { reference: string } } }[];
}

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack().gateway}${path}`, { headers });
}

describe("pass-through gateway", () => {
  beforeEach(clearUpstream);

  it("proxies a tenant search by path prefix and returns the upstream's searchset", async () => {
    const res = await get("/acme/fhir/Patient");
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(bundle.resourceType).toBe("Bundle");
    expect(bundle.type).toBe("searchset");
    const ids = (bundle.entry ?? []).map((e) => e.resource.id).sort();
    expect(ids).toEqual((await seededPatients("acme")).sort());

    const seen = await upstreamRequests();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.method).toBe("GET");
    expect(seen[0]?.url).toBe("/acme/R4/Patient");
    expect(seen[0]?.headers["x-tenant-id"]).toBe("acme");
  });

  it("keeps tenants apart: globex's base serves only globex data", async () => {
    const acme = new Set(await seededPatients("acme"));
    const res = await get("/globex/fhir/Patient?_count=100");
    const bundle = (await res.json()) as Bundle;
    const ids = (bundle.entry ?? []).map((e) => e.resource.id);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) expect(acme.has(id)).toBe(false);
    expect((await upstreamRequests())[0]?.url).toBe("/globex/R4/Patient?_count=100");
  });

  it("accepts the optional FHIR version segment and passes the canonical query (parameters by name) upstream", async () => {
    const [pid] = await seededPatients("acme");
    const res = await get(`/acme/fhir/R4/Observation?patient=${pid}&category=laboratory`);
    expect(res.status).toBe(200);
    expect((await upstreamRequests())[0]?.url).toBe(`/acme/R4/Observation?category=laboratory&patient=${pid}`);
  });

  it("reads a resource by id", async () => {
    const [pid] = await seededPatients("acme");
    const res = await get(`/acme/fhir/Patient/${pid}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(pid);
  });

  it("serves metadata", async () => {
    const res = await get("/acme/fhir/metadata");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe("CapabilityStatement");
  });

  it("resolves a tenant by Host", async () => {
    // fetch() cannot set Host, so this goes over a raw socket.
    const res = await rawRequest(stack().gatewayPort, "GET /fhir/Patient HTTP/1.0\r\nHost: hosty.test:8080\r\n\r\n");
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as Bundle).type).toBe("searchset");
    const seen = await upstreamRequests();
    expect(seen[0]?.url).toBe("/hosty/R4/Patient");
    expect(seen[0]?.headers["x-tenant-id"]).toBe("hosty");
  });

  it("resolves a tenant by header, after host and path", async () => {
    const res = await get("/fhir/Patient", { "X-Tenant": "heady" });
    expect(res.status).toBe(200);
    expect((await upstreamRequests())[0]?.headers["x-tenant-id"]).toBe("heady");
  });

  it("never switches tenants silently: a Host tenant with another tenant's path is a 404", async () => {
    const res = await rawRequest(stack().gatewayPort, "GET /acme/fhir/Patient HTTP/1.0\r\nHost: hosty.test\r\n\r\n");
    expectOutcome(res.status, 404, res.headers["content-type"], res.body);
    expect(await upstreamRequests()).toHaveLength(0);
  });

  it("answers an unknown tenant with a 404 OperationOutcome", async () => {
    const res = await get("/initech/fhir/Patient");
    expectOutcome(res.status, 404, res.headers.get("content-type"), await res.text());
    expect(await upstreamRequests()).toHaveLength(0);
  });

  it("strips client identity headers and sets its own", async () => {
    const res = await get("/acme/fhir/Patient", {
      "X-Tenant-ID": "globex",
      "X-User-ID": "admin",
      "X-Patient-ID": "p1",
      "X-Client-ID": "evil",
      "X-FHIR-Patient": "p2",
      "X-Policy-Version": "forged",
    });
    expect(res.status).toBe(200);
    const h = (await upstreamRequests())[0]?.headers ?? {};
    expect(h["x-tenant-id"]).toBe("acme");
    expect(h["x-user-id"]).toBeUndefined();
    expect(h["x-patient-id"]).toBeUndefined();
    expect(h["x-client-id"]).toBeUndefined();
    expect(h["x-fhir-patient"]).toBeUndefined();
    expect(h["x-policy-version"]).toBe(stack().version);
  });

  it("keeps a well-formed client X-Request-ID, replaces a bad one, and returns it", async () => {
    const good = "client-req-0001";
    const r1 = await get("/acme/fhir/Patient", { "X-Request-ID": good });
    expect(r1.headers.get("x-request-id")).toBe(good);
    const bad = "bad id with spaces";
    const r2 = await get("/acme/fhir/Patient", { "X-Request-ID": bad });
    const replaced = r2.headers.get("x-request-id") ?? "";
    expect(replaced).toMatch(/^[0-9a-f]{32}$/);
    const seen = await upstreamRequests();
    expect(seen.map((s) => s.headers["x-request-id"])).toEqual([good, replaced]);
  });

  it("propagates W3C traceparent with the client's trace id and a new parent id", async () => {
    const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await get("/acme/fhir/Patient", { traceparent: incoming });
    await get("/acme/fhir/Patient");
    const [withTrace, without] = await upstreamRequests();
    const tp = String(withTrace?.headers["traceparent"]);
    expect(tp).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(tp).not.toContain("00f067aa0ba902b7");
    expect(String(without?.headers["traceparent"])).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it("denies what a route denies, with a 403 OperationOutcome, before the upstream", async () => {
    const res = await get("/acme/fhir/$export");
    const oo = expectOutcome(res.status, 403, res.headers.get("content-type"), await res.text());
    expect(oo.issue[0]?.code).toBe("forbidden");
    expect(await upstreamRequests()).toHaveLength(0);
  });

  it("posts a create through to the upstream", async () => {
    const res = await fetch(`${stack().gateway}/acme/fhir/Patient`, {
      method: "POST",
      headers: { "Content-Type": "application/fhir+json" },
      body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Synthetic" }] }),
    });
    expect(res.status).toBe(201);
    const seen = await upstreamRequests();
    expect(seen[0]?.method).toBe("POST");
    expect(seen[0]?.url).toBe("/acme/R4/Patient");
  });
});
