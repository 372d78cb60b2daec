/**
 * Issue #13, delivery through a sink outage: a gateway with 2 workers ships its audit trail
 * to an HTTP sink that goes away for 60 s in the middle of 80 s of steady load (connection
 * refused, as a crashed SIEM) and comes back on the same port. Once the sink has caught up:
 * - every request the test made is exactly one event at the sink (matched by X-Request-ID),
 *   after the sink drops POSTs whose Idempotency-Key it already took, and a retried key
 *   carries the same bytes;
 * - per stream, the seals arrived in seq order from the open seal on, with no holes and no gap;
 * - what the sink holds verifies as an export (chains, checkpoints and their MACs);
 * - the outage was seen (fe_audit_sink_failures_total, a lag while down), and error.log is clean.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { milliseconds, seconds, type PolicyInput } from "../../../policy-dsl/index.ts";
import { formatFinding, verifyAudit } from "../../../compiler/audit/verify.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { caughtUp, metric, startAuditSink, type AuditSink } from "../../harness/audit-sink.ts";

const RATE = 300;
const CONCURRENCY = 16;
const BEFORE_MS = 10_000;
const OUTAGE_MS = 60_000;
const AFTER_MS = 10_000;
/** The shipper's backoff reaches 30 s during the outage, so the first retry after it may wait that long. */
const CATCH_UP_MS = 60_000;

let origin: Recorder | undefined;
let originUrl = "";
let keyDir = "";

beforeAll(async () => {
  origin = await startRecorder(() => undefined);
  originUrl = origin.url;
  keyDir = mkdtempSync(path.join(tmpdir(), "fe-audit-key-"));
});

afterAll(async () => {
  await origin?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

function policy(sinkUrl: string, audit: Partial<NonNullable<PolicyInput["audit"]>> = {}): PolicyInput {
  const keyFile = path.join(keyDir, "audit.key");
  writeFileSync(keyFile, randomBytes(32));
  return {
    name: "audit-sink-outage",
    audit: { keyFile, flushEvery: milliseconds(50), batchEvents: 64, sinks: [{ id: "siem", kind: "http", url: sinkUrl, timeout: seconds(2) }], ...audit },
    tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: `${originUrl}/acme` }, anonymous: true }],
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface LoadResult {
  readonly sent: string[];
  readonly statuses: Record<number, number>;
  readonly errors: string[];
}

/** `rate` requests a second for `durationMs`, at most `concurrency` at once, each with an X-Request-ID of its own. */
async function steadyLoad(base: string, rate: number, concurrency: number, durationMs: number): Promise<LoadResult> {
  const sent: string[] = [];
  const statuses: Record<number, number> = {};
  const errors: string[] = [];
  const start = Date.now();
  const run = `so${start.toString(36)}`;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const at = start + (i * 1000) / rate;
      if (at >= start + durationMs) return;
      if (at > Date.now()) await sleep(at - Date.now());
      const id = `${run}-${i.toString().padStart(6, "0")}`;
      sent.push(id);
      try {
        const r = await fetch(`${base}/acme/fhir/Observation?code=${i}`, { headers: { "X-Request-ID": id }, signal: AbortSignal.timeout(10_000) });
        await r.text();
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      } catch (e) {
        errors.push(`${id}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sent, statuses, errors };
}

/** The sink's events, checked to be one per id in `sent`; throws with what differs. */
function expectOnePerRequest(sink: AuditSink, sentIds: readonly string[]): void {
  const ids = sink.events().map((e) => e["request_id"] as string);
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  expect(twice.slice(0, 20), "events delivered twice under distinct keys").toEqual([]);
  const sent = new Set(sentIds);
  const missing = sentIds.filter((id) => !counts.has(id));
  const extra = ids.filter((id) => !sent.has(id));
  expect({ missing: missing.slice(0, 20), missingCount: missing.length, extra: extra.slice(0, 20) }).toEqual({ missing: [], missingCount: 0, extra: [] });
  expect(ids.length).toBe(sentIds.length);
  expect(sink.conflicts(), "a retried key carried other bytes").toEqual([]);
  expect(sink.unkeyed()).toBe(0);
}

/** Seals per stream, from the open seal on, in seq order and without holes. */
function expectOrderedSeals(sink: AuditSink, streams: number): void {
  const seals = sink.seals();
  const byStream = new Map<string, number[]>();
  for (const s of seals) byStream.set(s.stream, [...(byStream.get(s.stream) ?? []), s.seq]);
  expect(byStream.size).toBe(streams);
  for (const [stream, seqs] of byStream) {
    const holes = seqs.flatMap((q, i) => (q === i ? [] : [`at ${i}: seq ${q}`]));
    expect(holes.slice(0, 5), `stream ${stream}`).toEqual([]);
  }
  expect(seals.filter((s) => s.kind === "open").length).toBe(streams);
  expect(seals.filter((s) => s.kind === "gap")).toEqual([]);
  expect(seals.filter((s) => s.kind === "batch").reduce((n, s) => n + s.n, 0)).toBe(sink.events().length);
}

async function fewRequests(gw: OwnGateway, tag: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${tag}-${Date.now().toString(36)}-${i}`;
    const r = await fetch(`${gw.url}/acme/fhir/Observation?code=${i}`, { headers: { "X-Request-ID": id } });
    await r.text();
    expect(r.status).toBe(200);
    ids.push(id);
  }
  return ids;
}

describe("audit delivery through a sink outage", () => {
  it("delivers every event exactly once after dedupe, each stream's seals in order, once the sink is back", async () => {
    const sink = await startAuditSink();
    const gw = await startGateway(policy(sink.url), { workers: 2 });
    try {
      const t0 = Date.now();
      const loading = steadyLoad(gw.url, RATE, CONCURRENCY, BEFORE_MS + OUTAGE_MS + AFTER_MS);
      await sleep(BEFORE_MS);
      const beforeOutage = sink.events().length;
      await sink.down();
      await sleep(OUTAGE_MS);
      const during = await gw.metrics();
      const duringOutage = sink.events().length;
      await sink.up();
      const load = await loading;
      const loadMs = Date.now() - t0;
      await sleep(500); // the last batches are sealed (flushEvery 50 ms) before the lag can say 0
      const { text, ms: catchUpMs } = await caughtUp(gw, sink, CATCH_UP_MS);

      expect(load.errors).toEqual([]);
      expect(load.statuses).toEqual({ 200: load.sent.length });
      // The outage was real: the sink had events before it, took none while down, and the shipper saw it.
      expect(beforeOutage).toBeGreaterThan(0);
      expect(duringOutage).toBe(beforeOutage);
      expect(metric(during, 'fe_audit_sink_lag_bytes{sink="siem"}')).toBeGreaterThan(0);
      const failures = metric(text, 'fe_audit_sink_failures_total{sink="siem"}');
      expect(failures).toBeGreaterThan(0);

      expectOnePerRequest(sink, load.sent);
      expectOrderedSeals(sink, 2);
      expect(metric(text, "fe_audit_dropped_total")).toBe(0);
      // What the sink holds is an export whose chains and checkpoints verify.
      const exported = path.join(keyDir, "sink-export.jsonl");
      writeFileSync(exported, sink.bodies());
      const v = verifyAudit({ sources: [exported], key: readFileSync(path.join(keyDir, "audit.key")) });
      expect(v.findings.map(formatFinding)).toEqual([]);
      expect(v.macsChecked).toBeGreaterThan(0);
      expect(gw.newSeriousLines()).toEqual([]);
      console.info(
        `sink-outage: ${load.sent.length} requests in ${loadMs} ms, ${sink.events().length} distinct events, ${sink.keys().length} keys, ` +
          `${sink.duplicates()} duplicate POSTs, ${failures} failed deliveries, caught up ${catchUpMs} ms after the load, ${sink.seals().length} seals`,
      );
    } finally {
      await gw.stop();
      await sink.close();
    }
  }, 150_000);

  it("a sink answering 503 gets the same chunks again until it takes them", async () => {
    const sink = await startAuditSink();
    const gw = await startGateway(policy(sink.url), { workers: 2 });
    try {
      const before = await fewRequests(gw, "r503a", 20);
      await caughtUp(gw, sink, 10_000);
      sink.refuse(503);
      const during = await fewRequests(gw, "r503b", 40);
      await sleep(3000);
      expect(sink.refused()).toBeGreaterThan(0);
      sink.refuse(undefined);
      const after = await fewRequests(gw, "r503c", 20);
      await sleep(300);
      const { text } = await caughtUp(gw, sink, 20_000);
      expect(metric(text, 'fe_audit_sink_failures_total{sink="siem"}')).toBe(sink.refused());
      expectOnePerRequest(sink, [...before, ...during, ...after]);
      expectOrderedSeals(sink, 2);
      expect(gw.newSeriousLines()).toEqual([]);
    } finally {
      await gw.stop();
      await sink.close();
    }
  }, 60_000);

  // An idle stream signs its last seal after that seal has shipped: the checkpoint goes out as a
  // chunk of its own. Two such chunks were both keyed `<stream>:-1--1`, and the sink dropped
  // the second as a repeat of the first.
  it("keys a chunk that holds only a checkpoint by the seq it signs, so each one arrives", async () => {
    const sink = await startAuditSink();
    const gw = await startGateway(policy(sink.url, { checkpointInterval: seconds(1), checkpointEvery: 1000 }), { workers: 1 });
    try {
      const ids: string[] = [];
      for (const round of ["ck1", "ck2", "ck3"]) {
        ids.push(...(await fewRequests(gw, round, 5)));
        // The seal ships (200 ms), then the checkpoint comes due (1 s) and ships alone.
        await sleep(1800);
      }
      await caughtUp(gw, sink, 8_000);
      const alone = sink.keys().filter((k) => /:checkpoint-\d+$/.test(k));
      expect(alone.length, sink.keys().join(" ")).toBeGreaterThanOrEqual(2);
      expect(new Set(alone).size).toBe(alone.length);
      expect(sink.conflicts()).toEqual([]);
      // Every checkpoint the spool holds reached the sink.
      const spooled = readdirSync(path.join(gw.stateDir, "audit", "spool"))
        .filter((f) => f.endsWith(".jsonl"))
        .flatMap((f) => readFileSync(path.join(gw.stateDir, "audit", "spool", f), "utf8").split("\n"))
        .filter((l) => l.startsWith('{"t":"checkpoint"'));
      const received = sink.records().filter((r) => r["t"] === "checkpoint").map((r) => JSON.stringify(r));
      expect(spooled.length).toBeGreaterThanOrEqual(3);
      expect(received.sort()).toEqual(spooled.map((l) => JSON.stringify(JSON.parse(l))).sort());
      expectOnePerRequest(sink, ids);
    } finally {
      await gw.stop();
      await sink.close();
    }
  }, 60_000);

  // RFC 9112 6.3: a 204 has no body, so the client must not wait for one (or for a close) on a
  // keep-alive connection; each POST would time out and the same chunk be retried forever.
  it("a sink answering 204 No Content on a kept-alive connection takes the chunks, each once", async () => {
    const sink = await startAuditSink({ status: 204 });
    const gw = await startGateway(policy(sink.url), { workers: 1 });
    try {
      const ids = await fewRequests(gw, "r204", 10);
      await sleep(300);
      await caughtUp(gw, sink, 8_000);
      await sleep(2500); // past the sink's 2 s timeout: a delivery still waiting has failed by now
      const text = await gw.metrics();
      expect(metric(text, 'fe_audit_sink_failures_total{sink="siem"}')).toBe(0);
      expectOnePerRequest(sink, ids);
      expect(sink.duplicates()).toBe(0);
    } finally {
      await gw.stop();
      await sink.close();
    }
  }, 60_000);
});
