/**
 * Issue #13, the events themselves, through the shared stack (whose policy audits everything,
 * with a file sink and a checkpoint sink): every event validates against the shipped schema,
 * each request the test makes has exactly one event with the right decision, and PHI-like
 * values sent in paths, queries, headers, bodies and tokens appear nowhere: not in the spool,
 * not in the sinks, not in error.log, not in /metrics.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Ajv } from "ajv";
import { describe, expect, it, onTestFinished } from "vitest";
import { mint } from "../../harness/authz-client.ts";
import { head, rawRequest } from "../../harness/raw-http.ts";
import { seededPatients, stack } from "../../harness/env.ts";

const schema = JSON.parse(readFileSync(new URL("../../../lua-plugins/audit/event.schema.json", import.meta.url), "utf8")) as Record<string, unknown>;

const PHI = ["Zebediah", "Quillfeather", "1961-07-14", "078-05-1120", "Flat 7 Lantern Row"];

function rid(): string {
  return `it-audit-${randomBytes(8).toString("hex")}`;
}

/** Every line of every file under `dir`, recursively. */
function allLines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allLines(p));
    else out.push(...readFileSync(p, "utf8").split("\n").filter((l) => l !== ""));
  }
  return out;
}

function events(): Record<string, unknown>[] {
  const spool = path.join(stack().stateDir, "audit", "spool");
  return readdirSync(spool)
    .filter((f) => f.endsWith(".jsonl"))
    .flatMap((f) => readFileSync(path.join(spool, f), "utf8").split("\n").filter((l) => l !== ""))
    .filter((l) => !l.startsWith('{"t":'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The events of these request ids, once the flush timers (100 ms) have written them. */
async function eventsOf(ids: readonly string[], timeoutMs = 5000): Promise<Map<string, Record<string, unknown>[]>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const by = new Map<string, Record<string, unknown>[]>();
    for (const e of events()) {
      const id = e["request_id"] as string;
      if (ids.includes(id)) by.set(id, [...(by.get(id) ?? []), e]);
    }
    if (by.size === ids.length || Date.now() > deadline) return by;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("audit events", () => {
  it("records one schema-valid event per request, with the decision and no PHI anywhere", async () => {
    const gw = stack().gateway;
    const [patient] = await seededPatients("acme");
    const token = await mint({ scope: "patient/*.rs launch/patient", patient });
    const sent: { id: string; expect: Partial<Record<string, unknown>> }[] = [];
    // The create below lands in the shared upstream; it is removed there at the end, so
    // later files still see only the seeded patients.
    const created: string[] = [];
    onTestFinished(async () => {
      for (const id of created) await fetch(`${stack().upstream}/acme/R4/Patient/${id}`, { method: "DELETE" });
    });
    const send = async (p: string, init: RequestInit, expectFields: Partial<Record<string, unknown>>): Promise<number> => {
      const id = rid();
      const r = await fetch(`${gw}${p}`, { ...init, headers: { ...(init.headers as Record<string, string>), "X-Request-ID": id } });
      const text = await r.text();
      if (r.status === 201) created.push((JSON.parse(text) as { id: string }).id);
      sent.push({ id, expect: { status: r.status, ...expectFields } });
      return r.status;
    };
    const phiHeaders = { "User-Agent": `Browser ${PHI[0]}`, "X-Patient-Name": PHI[1]!, Cookie: `dob=${PHI[2]}` };
    // Query values.
    await send(`/acme/fhir/Patient?name=${PHI[0]}&birthdate=${PHI[2]}&identifier=${PHI[3]}`, { headers: phiHeaders }, { decision: "allow", tenant: "acme", interaction: "search-type", resource_type: "Patient" });
    // A path the classifier refuses (an unknown type named like a person).
    expect(await send(`/acme/fhir/${PHI[1]}/1`, { headers: phiHeaders }, { decision: "deny", tenant: "acme" })).toBe(404);
    // A body, through the durable write path.
    const body = JSON.stringify({ resourceType: "Patient", name: [{ family: PHI[1], given: [PHI[0]] }], birthDate: PHI[2], address: [{ line: [PHI[4]] }] });
    await send(`/acme/fhir/Patient`, { method: "POST", headers: { ...phiHeaders, "Content-Type": "application/fhir+json" }, body }, { decision: "allow", interaction: "create", resource_type: "Patient" });
    expect(created).toHaveLength(1);
    // A token: patient-scoped read that is allowed, and a search outside the compartment that is refused.
    await send(`/secure/fhir/Patient/${patient}`, { headers: { ...phiHeaders, Authorization: `Bearer ${token}` } }, { decision: "allow", patient, resource_id: patient });
    expect(await send(`/secure/fhir/Observation?patient=someone-else&code=${PHI[3]}`, { headers: { Authorization: `Bearer ${token}` } }, { decision: "deny", reason: "forbidden" })).toBe(403);
    // Shadow mode: the would-be denial goes through and says so.
    const shadowToken = await mint({ tenant: "shadow", scope: "patient/*.rs launch/patient", patient });
    const shadowed = await send(`/shadow/fhir/Observation?patient=someone-else`, { headers: { Authorization: `Bearer ${shadowToken}` } }, { decision: "shadow-deny", reason: "forbidden" });
    expect(shadowed).toBe(200);
    // A request nginx refuses by itself, before any Lua: TRACE.
    const traceId = rid();
    const traced = await rawRequest(stack().gatewayPort, head("TRACE /acme/fhir/Patient HTTP/1.1", ["Host: 127.0.0.1", `X-Request-ID: ${traceId}`]));
    expect(traced.status).toBe(405);
    sent.push({ id: traceId, expect: { status: 405, decision: "deny", reason: "nginx-405", tenant: "none", method: "TRACE" } });

    const by = await eventsOf(sent.map((s) => s.id));
    const ajv = new Ajv({ allErrors: true, strict: true });
    const validate = ajv.compile(schema);
    for (const s of sent) {
      const list = by.get(s.id) ?? [];
      expect(list, s.id).toHaveLength(1);
      const ev = list[0]!;
      expect(validate(ev), JSON.stringify(validate.errors)).toBe(true);
      expect(ev).toMatchObject(s.expect);
      expect(ev["token_id"] === undefined || /^[0-9a-f]{16}$/.test(ev["token_id"] as string)).toBe(true);
    }
    // The token-bearing events name the token by its hash prefix, the client and the scopes.
    const read = by.get(sent[3]!.id)![0]!;
    expect(read).toMatchObject({ issuer: "demo", scope: expect.stringContaining("patient/*.rs") });
    // Query parameter names are recorded, their values only as HMACs (the test policy hashes them).
    const search = by.get(sent[0]!.id)![0]!;
    expect((search["params"] as { name: string }[]).map((p) => p.name)).toEqual(["birthdate", "identifier", "name"]);
    expect((search["params"] as { hmac?: string }[]).every((p) => /^[0-9a-f]{32}$/.test(p.hmac ?? ""))).toBe(true);

    // Every event the suite has produced so far validates too.
    for (const e of events()) expect(validate(e), JSON.stringify({ e, errors: validate.errors })).toBe(true);

    // No PHI-like value, and not the raw token, in anything the gateway wrote.
    await new Promise((r) => setTimeout(r, 600));
    const written = [
      ...allLines(path.join(stack().stateDir, "audit")),
      ...readFileSync(stack().errorLog, "utf8").split("\n"),
      ...(await (await fetch(`${stack().admin}/metrics`)).text()).split("\n"),
    ].join("\n");
    for (const v of [...PHI, token, token.slice(-40)]) expect(written.includes(v), v).toBe(false);
  });

  it("exposes the audit metrics", async () => {
    const text = await (await fetch(`${stack().admin}/metrics`)).text();
    for (const name of ["fe_audit_events_total", "fe_audit_batches_total", "fe_audit_spool_bytes", "fe_audit_dropped_total", "fe_audit_gaps_total"]) expect(text).toMatch(new RegExp(`^${name} \\d+$`, "m"));
    expect(text).toMatch(/^fe_audit_sink_lag_bytes\{sink="file"\} \d+$/m);
    expect(text).toMatch(/^fe_audit_sink_failures_total\{sink="ckpt"\} 0$/m);
    expect(Number(/^fe_audit_events_total (\d+)$/m.exec(text)![1])).toBeGreaterThan(0);
    expect(Number(/^fe_audit_dropped_total (\d+)$/m.exec(text)![1])).toBe(0);
  });
});
