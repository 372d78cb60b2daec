/**
 * Issue #13, what the audit trail does at its limits, each on a gateway of its own:
 * - fail-closed: a spool past its size answers new FHIR requests 503 with Retry-After (an
 *   OperationOutcome), nothing of them reaches the upstream, and the public endpoints still work;
 * - drop-oldest: with the only sink down, the oldest segments go, the loss is counted and
 *   recorded in the chain as a gap seal, and requests keep being served;
 * - a worker killed with -9 loses at most its unflushed batch: its stream ends without a close
 *   seal (verify-audit: unclosed), and the new worker starts a new stream.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kilobytes, milliseconds, type PolicyInput } from "../../../policy-dsl/index.ts";
import { formatFinding, verifyAudit } from "../../../compiler/audit/verify.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";

let origin: Recorder | undefined;
let originUrl = "";
let reached = 0;

beforeAll(async () => {
  origin = await startRecorder(() => {
    reached += 1;
  });
  originUrl = origin.url;
});
afterAll(() => origin?.close());

function keyFile(dir: string): string {
  const p = path.join(dir, "audit-test.key");
  writeFileSync(p, randomBytes(32));
  return p;
}

function policy(name: string, key: string, audit: Partial<NonNullable<PolicyInput["audit"]>>): PolicyInput {
  return {
    name,
    audit: { keyFile: key, flushEvery: milliseconds(50), ...audit },
    tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: `${originUrl}/acme` }, anonymous: true }],
  };
}

function spoolFiles(gw: OwnGateway): string[] {
  const dir = path.join(gw.stateDir, "audit", "spool");
  return readdirSync(dir).filter((f) => f.endsWith(".jsonl")).sort();
}

function seals(gw: OwnGateway): Record<string, unknown>[] {
  const dir = path.join(gw.stateDir, "audit", "spool");
  return spoolFiles(gw).flatMap((f) =>
    readFileSync(path.join(dir, f), "utf8")
      .split("\n")
      .filter((l) => l.startsWith('{"t":"seal"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return m === null ? NaN : Number(m[1]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("audit at its limits", () => {
  it("fail-closed: a full spool refuses FHIR requests with 503 and Retry-After, and none reaches the upstream", async () => {
    const tmp = await startGateway(policy("audit-fail-closed", "/dev/null", {}), {}).catch(() => undefined);
    expect(tmp).toBeUndefined(); // a key file that is not 32 bytes fails the build's nginx -t
    const gw = await startGateway(policy("audit-fail-closed", keyFile(path.join("/tmp")), { spoolSize: kilobytes(8), atLimit: "fail-closed" }));
    try {
      let refusedAt = -1;
      for (let i = 0; i < 400 && refusedAt < 0; i++) {
        const r = await fetch(`${gw.url}/acme/fhir/Observation?code=${i}`);
        await r.text();
        if (r.status === 503) refusedAt = i;
        else expect(r.status).toBe(200);
        if (i % 20 === 19) await sleep(120);
      }
      expect(refusedAt).toBeGreaterThan(0);
      const before = reached;
      const r = await fetch(`${gw.url}/acme/fhir/Patient?name=x`);
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("5");
      expect(r.headers.get("content-type")).toContain("application/fhir+json");
      expect(((await r.json()) as { resourceType: string }).resourceType).toBe("OperationOutcome");
      expect(reached).toBe(before);
      // What needs no PHI still answers.
      expect((await fetch(`${gw.url}/acme/fhir/metadata`)).status).not.toBe(503);
      expect(gw.newSeriousLines()).toEqual([]);
    } finally {
      await gw.stop();
    }
  });

  it("drop-oldest: with its sink down the spool stays bounded, and each loss is counted and sealed as a gap", async () => {
    const key = keyFile("/tmp");
    const gw = await startGateway(
      policy("audit-drop-oldest", key, {
        spoolSize: kilobytes(48),
        segmentSize: kilobytes(8),
        atLimit: "drop-oldest",
        // Nothing listens there: no segment is ever delivered, so only the bound removes them.
        sinks: [{ id: "down", kind: "http", url: "http://127.0.0.1:9/ingest" }],
      }),
    );
    try {
      for (let i = 0; i < 600; i++) {
        const r = await fetch(`${gw.url}/acme/fhir/Observation?code=${i}`);
        expect(r.status).toBe(200);
        await r.text();
        if (i % 50 === 49) await sleep(250);
      }
      await sleep(1200);
      const text = await gw.metrics();
      expect(metric(text, "fe_audit_dropped_total")).toBeGreaterThan(0);
      expect(metric(text, "fe_audit_gaps_total")).toBeGreaterThan(0);
      expect(text).toMatch(/^fe_audit_sink_failures_total\{sink="down"\} [1-9]\d*$/m);
      const bytes = spoolFiles(gw).reduce((n, f) => n + readFileSync(path.join(gw.stateDir, "audit", "spool", f)).length, 0);
      expect(bytes).toBeLessThan(48 * 1024 * 1.25);
      const gaps = seals(gw).filter((s) => s["kind"] === "gap");
      expect(gaps.length).toBeGreaterThan(0);
      expect(gaps.filter((g) => g["reason"] === "spool-dropped").length, JSON.stringify(gaps)).toBeGreaterThan(0);
      // A writer that outruns the shipper's pruning past the headroom drops too, as spool-full.
      for (const g of gaps) {
        expect(["spool-dropped", "spool-full"], JSON.stringify(g)).toContain(g["reason"]);
        // A removed segment is named, and sealed even if it held only seals; a spool-full gap drops events.
        if (g["reason"] === "spool-dropped") expect(g["segment"], JSON.stringify(g)).toMatch(/^w\d+-\d+-\d+\.\d{6}\.jsonl$/);
        else expect(g["dropped"] as number, JSON.stringify(g)).toBeGreaterThan(0);
      }
      // The dropped events, as the gaps say, are as many as the metric counted.
      expect(gaps.reduce((n, g) => n + (g["dropped"] as number), 0)).toBe(metric(text, "fe_audit_dropped_total"));
      // verify-audit shows each gap and nothing else: the dropped heads are accounted for.
      const v = verifyAudit({ sources: [path.join(gw.stateDir, "audit", "spool")], key: readFileSync(key) });
      expect(v.findings.filter((f) => f.kind !== "gap").map(formatFinding)).toEqual([]);
      expect(v.findings).toHaveLength(gaps.length);
      const signed = spoolFiles(gw).flatMap((f) => readFileSync(path.join(gw.stateDir, "audit", "spool", f), "utf8").split("\n")).filter((l) => l.startsWith('{"t":"checkpoint"'));
      expect(v.macsChecked).toBe(signed.length);
      expect(gw.newSeriousLines()).toEqual([]);
    } finally {
      await gw.stop();
    }
  });

  it("a worker killed with -9 leaves a stream without a close seal, and its successor starts a new one", async () => {
    const key = keyFile("/tmp");
    const gw = await startGateway(policy("audit-kill9", key, {}));
    try {
      for (let i = 0; i < 20; i++) await (await fetch(`${gw.url}/acme/fhir/Observation?code=${i}`)).text();
      await sleep(300);
      const [first] = spoolFiles(gw);
      const pid = Number(/^w\d+-\d+-(\d+)\./.exec(first!)![1]);
      process.kill(pid, "SIGKILL");
      await sleep(500);
      for (let i = 0; i < 5; i++) await (await fetch(`${gw.url}/acme/fhir/Observation?code=k${i}`)).text();
      await sleep(300);
      const streams = new Set(spoolFiles(gw).map((f) => f.split(".")[0]));
      expect(streams.size).toBe(2);
      const killed = seals(gw).filter((s) => (s["stream"] as string).endsWith(`-${pid}`));
      expect(killed.map((s) => s["kind"])).not.toContain("close");
      // What it had flushed is all there: 20 events in whole batches.
      expect(killed.filter((s) => s["kind"] === "batch").reduce((n, s) => n + (s["n"] as number), 0)).toBe(20);
      // verify-audit shows it as cut off at its last seal, and the new stream as open.
      const last = killed.at(-1)!;
      const v = verifyAudit({ sources: [path.join(gw.stateDir, "audit", "spool")], key: readFileSync(key) });
      expect(v.findings.map((f) => `${path.basename(f.file)} ${f.kind} ${f.seq ?? ""}`)).toEqual([`${spoolFiles(gw).find((f) => f.endsWith(`-${pid}.000000.jsonl`))!} unclosed ${String(last["seq"])}`]);
      expect(v.notes.join("\n")).toMatch(/is open: its worker runs/);
      expect(gw.newSeriousLines([/worker process \d+ exited on signal 9/])).toEqual([]);
    } finally {
      await gw.stop();
    }
  });
});
