/**
 * Break-glass (issue #13's flag and reason, lua-plugins/breakglass), through the shared stack's
 * `clinic` tenant: user/ scopes held to the patient in context (compartmentFor), a break-glass
 * scope of its own, and `user/Condition.rs` added for a break-glass request. What a user sees:
 * - a practitioner token may reach another patient, and Conditions, only with a listed reason
 *   in X-Break-Glass, and then the upstream is told the reason;
 * - a reason outside the list, two reasons, a token without the scope, a patient/ token, or a
 *   tenant without break-glass is refused (OperationOutcome), and nothing reaches the upstream;
 * - the audit event says break_glass and the reason, schema-valid, and (durable class) is in
 *   the spool by the time the client has the response;
 * - the response cache is bypassed both ways, so a break-glass read is never served later to
 *   the same token without it;
 * - the client's own X-Break-Glass never reaches the upstream.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Ajv } from "ajv";
import { beforeAll, describe, expect, it } from "vitest";
import { mint } from "../../harness/authz-client.ts";
import { head, rawRequest } from "../../harness/raw-http.ts";
import { seededPatients, stack, upstreamRequests } from "../../harness/env.ts";

const schema = JSON.parse(readFileSync(new URL("../../../lua-plugins/audit/event.schema.json", import.meta.url), "utf8")) as Record<string, unknown>;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

let P = "";
let Q = "";
let practitioner = "";
let noGlass = "";
let patientApp = "";

beforeAll(async () => {
  [P = "", Q = ""] = await seededPatients("acme");
  practitioner = await mint({ tenant: "clinic", scope: "user/Observation.rs break-glass", patient: P });
  noGlass = await mint({ tenant: "clinic", scope: "user/Observation.rs", patient: P });
  patientApp = await mint({ tenant: "clinic", scope: "patient/*.rs launch/patient break-glass", patient: P });
});

function rid(): string {
  return `it-glass-${randomBytes(8).toString("hex")}`;
}

interface Sent {
  readonly id: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function get(p: string, token: string, extra: Record<string, string> = {}, tenant = "clinic"): Promise<Sent> {
  const id = rid();
  const r = await fetch(`${stack().gateway}/${tenant}/fhir/${p}`, { headers: { Authorization: `Bearer ${token}`, "X-Request-ID": id, ...extra } });
  return { id, status: r.status, headers: r.headers, body: (await r.json()) as Record<string, unknown> };
}

/** The spool's events of these request ids, as they are now (no waiting). */
function spooled(ids: readonly string[]): Map<string, Record<string, unknown>> {
  const dir = path.join(stack().stateDir, "audit", "spool");
  const out = new Map<string, Record<string, unknown>>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".jsonl"))) {
    for (const line of readFileSync(path.join(dir, f), "utf8").split("\n")) {
      if (line === "" || line.startsWith('{"t":')) continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      if (ids.includes(e["request_id"] as string)) out.set(e["request_id"] as string, e);
    }
  }
  return out;
}

async function eventsOf(ids: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const by = spooled(ids);
    if (by.size === ids.length || Date.now() > deadline) return by;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function reached(ids: readonly string[]): Promise<Map<string, Record<string, string | string[]>>> {
  const out = new Map<string, Record<string, string | string[]>>();
  for (const r of await upstreamRequests()) {
    const id = r.headers["x-request-id"];
    if (typeof id === "string" && ids.includes(id)) out.set(id, r.headers);
  }
  return out;
}

function outcome(s: Sent): string {
  const issue = (s.body["issue"] as { diagnostics?: string; details?: { text?: string } }[] | undefined)?.[0];
  expect(s.body["resourceType"]).toBe("OperationOutcome");
  return issue?.diagnostics ?? issue?.details?.text ?? "";
}

async function glassCount(outcomeLabel: string): Promise<number> {
  const text = await (await fetch(`${stack().admin}/metrics`)).text();
  const m = new RegExp(`^fe_break_glass_total\\{tenant="clinic",outcome="${outcomeLabel}"\\} (\\d+)$`, "m").exec(text);
  return m === null ? 0 : Number(m[1]);
}

describe("break-glass", () => {
  it("lets a practitioner reach another patient and more types only with a listed reason, and tells the upstream", async () => {
    const before = await glassCount("emergency");
    const plain = await get(`Observation?patient=${Q}`, practitioner);
    expect(plain.status).toBe(403);
    expect(outcome(plain)).toContain("Not allowed by the token's scopes");
    const own = await get(`Observation?patient=${P}`, practitioner);
    expect(own.status).toBe(200);
    const broken = await get(`Observation?patient=${Q}`, practitioner, { "X-Break-Glass": "emergency" });
    expect(broken.status).toBe(200);
    expect(broken.body["resourceType"]).toBe("Bundle");
    // Conditions: only break-glass adds user/Condition.rs.
    const condPlain = await get(`Condition?patient=${P}`, practitioner);
    expect(condPlain.status).toBe(403);
    const cond = await get(`Condition?patient=${Q}`, practitioner, { "X-Break-Glass": "patient-unconscious" });
    expect(cond.status).toBe(200);

    const up = await reached([plain.id, own.id, broken.id, condPlain.id, cond.id]);
    expect([...up.keys()].sort()).toEqual([own.id, broken.id, cond.id].sort());
    expect(up.get(broken.id)?.["x-break-glass"]).toBe("emergency");
    expect(up.get(cond.id)?.["x-break-glass"]).toBe("patient-unconscious");
    expect(up.get(own.id)?.["x-break-glass"]).toBeUndefined();
    expect(await glassCount("emergency")).toBe(before + 1);
  });

  it("records the flag and the reason in a schema-valid event that is in the spool when the response arrives", async () => {
    const ids: string[] = [];
    // Each checked the moment its response is complete: without the durable write the event
    // would wait for the 100 ms flush, and five in a row would not all be there.
    for (let i = 0; i < 5; i++) {
      const s = await get(`Observation?patient=${Q}&_count=${i + 1}`, practitioner, { "X-Break-Glass": "emergency" });
      expect(s.status).toBe(200);
      const now = spooled([s.id]).get(s.id);
      expect(now, `event of ${s.id} in the spool at response time`).toBeDefined();
      ids.push(s.id);
    }
    const plain = await get(`Observation?patient=${P}`, practitioner);
    const refused = await get(`Observation?patient=${Q}`, noGlass, { "X-Break-Glass": "emergency" });
    expect(refused.status).toBe(403);
    const events = await eventsOf([...ids, plain.id, refused.id]);
    for (const id of ids) {
      const e = events.get(id)!;
      expect(validate(e), JSON.stringify(validate.errors)).toBe(true);
      expect(e).toMatchObject({ tenant: "clinic", decision: "allow", break_glass: true, break_glass_reason: "emergency", interaction: "search-type", resource_type: "Observation", status: 200 });
    }
    expect(events.get(plain.id)).toMatchObject({ decision: "allow", break_glass: false });
    expect(events.get(plain.id)?.["break_glass_reason"]).toBeUndefined();
    // A listed reason from a token that may not use it: the attempt is on the record.
    const r = events.get(refused.id)!;
    expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    expect(r).toMatchObject({ decision: "deny", reason: "forbidden", break_glass: false, break_glass_reason: "emergency", status: 403 });
  });

  it("refuses what it cannot grant, as OperationOutcomes, and nothing of it reaches the upstream", async () => {
    const badReason = await get(`Observation?patient=${Q}`, practitioner, { "X-Break-Glass": "Zebediah is crashing" });
    expect(badReason.status).toBe(400);
    expect(outcome(badReason)).toBe("X-Break-Glass must be one of these reason codes: emergency, patient-unconscious.");
    const noScope = await get(`Observation?patient=${Q}`, noGlass, { "X-Break-Glass": "emergency" });
    expect(noScope.status).toBe(403);
    expect(outcome(noScope)).toBe("The access token does not allow break-glass access.");
    // patient/ scopes mean the compartment: break-glass does not widen them.
    const patientScoped = await get(`Observation?patient=${Q}`, patientApp, { "X-Break-Glass": "emergency" });
    expect(patientScoped.status).toBe(403);
    const secure = await mint({ scope: "user/Observation.rs break-glass" });
    const notEnabled = await get(`Observation?patient=${Q}`, secure, { "X-Break-Glass": "emergency" }, "secure");
    expect(notEnabled.status).toBe(403);
    expect(outcome(notEnabled)).toBe("Break-glass access is not enabled for this tenant.");

    const id = rid();
    const twice = await rawRequest(
      stack().gatewayPort,
      head(`GET /clinic/fhir/Observation?patient=${Q} HTTP/1.1`, ["Host: 127.0.0.1", `Authorization: Bearer ${practitioner}`, `X-Request-ID: ${id}`, "X-Break-Glass: emergency", "X-Break-Glass: patient-unconscious"]),
    );
    expect(twice.status).toBe(400);
    expect(twice.body).toContain("X-Break-Glass must be given once.");

    expect((await reached([badReason.id, noScope.id, patientScoped.id, notEnabled.id, id])).size).toBe(0);
    // The reason given is policy data only when listed: free text never reaches the trail.
    const events = await eventsOf([badReason.id]);
    expect(events.get(badReason.id)).toMatchObject({ decision: "deny", reason: "invalid", break_glass: false });
    expect(JSON.stringify(events.get(badReason.id))).not.toContain("Zebediah");
  });

  it("bypasses the cache both ways: a break-glass read is never stored for, or served to, the token", async () => {
    const first = await get(`Observation?patient=${P}&_count=7`, practitioner);
    const second = await get(`Observation?patient=${P}&_count=7`, practitioner);
    expect([first.headers.get("x-cache"), second.headers.get("x-cache")]).toEqual(["MISS", "HIT"]);
    // The same cached URL with break-glass goes to the upstream, twice.
    const g1 = await get(`Observation?patient=${P}&_count=7`, practitioner, { "X-Break-Glass": "emergency" });
    const g2 = await get(`Observation?patient=${Q}&_count=7`, practitioner, { "X-Break-Glass": "emergency" });
    const g3 = await get(`Observation?patient=${Q}&_count=7`, practitioner, { "X-Break-Glass": "emergency" });
    expect([g1, g2, g3].map((s) => [s.status, s.headers.get("x-cache")])).toEqual([[200, "BYPASS"], [200, "BYPASS"], [200, "BYPASS"]]);
    expect((await reached([g1.id, g2.id, g3.id])).size).toBe(3);
    // Without the header the other patient is refused again, not answered from a stored copy.
    const after = await get(`Observation?patient=${Q}&_count=7`, practitioner);
    expect(after.status).toBe(403);
  });

  it("keeps the break-glass scope out of the invalid ones, and never forwards the client's header", async () => {
    // clinic refuses tokens with a scope it cannot read: the break-glass scope is not one.
    const own = await get(`Observation?patient=${P}`, practitioner, { "X-Break-Glass-Note": "x" });
    expect(own.status).toBe(200);
    // A public read with the header: nothing to break, served, and the header stays here.
    const id = rid();
    const meta = await fetch(`${stack().gateway}/clinic/fhir/metadata`, { headers: { "X-Break-Glass": "emergency", "X-Request-ID": id } });
    expect(meta.status).toBe(200);
    await meta.text();
    const up = await reached([id]);
    expect(up.size).toBe(1);
    expect(up.get(id)?.["x-break-glass"]).toBeUndefined();
  });
});
