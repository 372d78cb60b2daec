import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream, type Upstream } from "../../../demo/upstream.ts";

let up: Upstream;
beforeAll(async () => {
  up = await startUpstream({ port: 0, tenants: ["acme", "globex"], patientsPerTenant: 4 });
});
afterAll(async () => up.close());

interface SearchSet {
  resourceType: string;
  type?: string;
  entry?: { resource: { resourceType: string; id: string; subject?: { reference: string }; name?: { family: string }[] } }[];
}
const get = async (path: string): Promise<{ status: number; body: SearchSet }> => {
  const res = await fetch(`${up.url}${path}`);
  return { status: res.status, body: (await res.json()) as SearchSet };
};

describe("demo upstream", () => {
  it("serves each tenant's seeded patients as a searchset", async () => {
    const { status, body } = await get("/acme/R4/Patient");
    expect(status).toBe(200);
    expect(body.type).toBe("searchset");
    expect(body.entry?.map((e) => e.resource.id).sort()).toEqual(up.patients("acme").sort());
    expect(up.patients("acme")).toHaveLength(4);
  });

  it("keeps tenants apart: ids and names never cross", async () => {
    const acme = up.patients("acme")[0] ?? "";
    expect((await get(`/globex/R4/Patient/${acme}`)).status).toBe(404);
    expect((await get(`/acme/R4/Patient/${acme}`)).status).toBe(200);
    const globexNames = (await get("/globex/R4/Patient")).body.entry?.map((e) => e.resource.name?.[0]?.family) ?? [];
    const acmeNames = (await get("/acme/R4/Patient")).body.entry?.map((e) => e.resource.name?.[0]?.family) ?? [];
    expect(globexNames.some((n) => acmeNames.includes(n))).toBe(false);
  });

  it("searches observations by category for one patient, bare id or reference", async () => {
    const p = up.patients("globex")[1] ?? "";
    for (const form of [p, `Patient/${p}`]) {
      const { body } = await get(`/globex/R4/Observation?category=laboratory&patient=${encodeURIComponent(form)}`);
      expect(body.entry?.length).toBe(2);
      for (const e of body.entry ?? []) expect(e.resource.subject?.reference).toBe(`Patient/${p}`);
    }
    for (const category of ["vital-signs", "social-history"]) {
      expect((await get(`/globex/R4/Observation?category=${category}&patient=${p}`)).body.entry?.length).toBeGreaterThan(0);
    }
    expect((await get(`/globex/R4/Condition?patient=${p}`)).body.entry?.length).toBe(1);
    expect((await get(`/globex/R4/Encounter?patient=${p}`)).body.entry?.length).toBe(1);
  });

  it("records what it receives, and forgets on clear", async () => {
    up.clearRequests();
    await fetch(`${up.url}/acme/R4/Patient?_count=1`, { headers: { "x-probe": "1" } });
    const res = await fetch(`${up.url}/__admin/requests`);
    const recorded = (await res.json()) as { method: string; url: string; headers: Record<string, string> }[];
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ method: "GET", url: "/acme/R4/Patient?_count=1" });
    expect(recorded[0]?.headers["x-probe"]).toBe("1");
    await fetch(`${up.url}/__admin/requests`, { method: "DELETE" });
    expect(up.requests()).toHaveLength(0);
  });

  it("creates resources and answers metadata and unknown tenants", async () => {
    const res = await fetch(`${up.url}/acme/R4/Patient`, {
      method: "POST",
      headers: { "content-type": "application/fhir+json" },
      body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Created" }] }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string };
    expect((await get(`/acme/R4/Patient/${created.id}`)).status).toBe(200);
    expect((await get("/acme/R4/metadata")).body.resourceType).toBe("CapabilityStatement");
    const unknown = await get("/nobody/R4/Patient");
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe("OperationOutcome");
  });

  it("seeds the same ids and data every time", async () => {
    const again = await startUpstream({ port: 0, tenants: ["acme", "globex"], patientsPerTenant: 4 });
    try {
      const a = await (await fetch(`${up.url}/globex/R4/Patient/globex-p2`)).json();
      const b = await (await fetch(`${again.url}/globex/R4/Patient/globex-p2`)).json();
      const strip = (x: unknown): unknown => ({ ...(x as object), meta: undefined });
      expect(strip(b)).toEqual(strip(a));
    } finally {
      await again.close();
    }
  });
});
