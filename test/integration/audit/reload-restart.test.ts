/**
 * Issue #13, reload and restart: a gateway with 2 workers and an HTTP audit sink takes 22 s of
 * steady load while its policy is reloaded twice (each a new bundle version) and nginx is then
 * restarted gracefully (QUIT, then the same bundle on the same ports and state dir). Part of the
 * load is refused by the gateway itself: an unknown tenant (404, before any tenant is known), a
 * route that denies deletes (403) and TRACE (405, refused by nginx before any Lua). Once the
 * sink has caught up:
 * - the sink's events are, each exactly once, the requests the recording upstream saw plus the
 *   requests the gateway refused, and nothing else: a request that failed at the client
 *   (refused or reset while nginx restarts, or an idle keep-alive connection closed under it by
 *   a reload) is an event only when the upstream saw it;
 * - every stream opened by the start, a reload or the restart begins with an open seal naming
 *   its bundle version, its seals run in seq order without holes or gaps, and every stream a
 *   reload or the restart ended closes with a close seal and its checkpoint (the live ones do
 *   when nginx stops at the end);
 * - nothing was dropped (fe_audit_dropped_total 0 before and after the restart), the old
 *   streams' segments left the spool once shipped, and error.log is clean.
 * Once with a sink on loopback, which answers at once, and once with a sink that takes 300 ms
 * to answer, as a remote or busy one would: then each reload lands while the old shipper has a
 * delivery in flight, so the hand-over to the new workers' shipper happens mid-chunk.
 */
import http from "node:http";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { milliseconds, seconds, type PolicyInput } from "../../../policy-dsl/index.ts";
import { formatFinding, verifyAudit } from "../../../compiler/audit/verify.ts";
import { down } from "../../../compiler/control.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { caughtUp, lastSeals, metric, startAuditSink, type AuditSink, type SealRecord } from "../../harness/audit-sink.ts";

const RATE = 200;
const CONCURRENCY = 16;
const LOAD_MS = 22_000;
const RELOADS_AT = [5_000, 10_000] as const;
const RESTART_AT = 15_000;
const CATCH_UP_MS = 15_000;
/** Client failures are expected only between a reload's (or the restart's) beginning and this long after its end. */
const FAILURE_WINDOW_MS = 2_000;

/** What each request of the load is, by its index: the allowed search reaches the upstream, the rest are refused by the gateway. */
const KINDS = {
  search: { method: "GET", path: (i: number) => `/acme/fhir/Observation?code=${i}`, expect: { status: 200, decision: "allow", tenant: "acme" } },
  "no-tenant": { method: "GET", path: () => "/nosuch/fhir/Observation", expect: { status: 404, decision: "deny", tenant: "none", reason: "not-found" } },
  "route-denied": { method: "DELETE", path: (i: number) => `/acme/fhir/Observation/obs-${i}`, expect: { status: 403, decision: "deny", tenant: "acme", reason: "forbidden" } },
  trace: { method: "TRACE", path: () => "/acme/fhir/Observation", expect: { status: 405, decision: "deny", tenant: "none", reason: "nginx-405" } },
} as const;
type Kind = keyof typeof KINDS;
const MIX: readonly Kind[] = ["search", "search", "search", "search", "search", "search", "no-tenant", "no-tenant", "route-denied", "trace"];

let origin: Recorder | undefined;
let originUrl = "";
/** X-Request-ID of every request the upstream got, with how many times. */
const atOrigin = new Map<string, number>();
let originOther = 0;
let keyFile = "";
let keyDir = "";

beforeAll(async () => {
  origin = await startRecorder((req) => {
    const id = req.headers["x-request-id"];
    if (typeof id === "string") atOrigin.set(id, (atOrigin.get(id) ?? 0) + 1);
    else originOther += 1;
  }, JSON.stringify({ resourceType: "Bundle", type: "searchset", total: 0, entry: [] }));
  originUrl = origin.url;
  keyDir = mkdtempSync(path.join(tmpdir(), "fe-audit-key-"));
  keyFile = path.join(keyDir, "audit.key");
  writeFileSync(keyFile, randomBytes(32));
});

afterAll(async () => {
  await origin?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

/** The same gateway but for the upstream's keepalive, which changes nginx.conf and so the bundle version. */
function policy(sinkUrl: string, keepalive: number): PolicyInput {
  return {
    name: "audit-reload-restart",
    audit: { keyFile, flushEvery: milliseconds(50), batchEvents: 64, sinks: [{ id: "siem", kind: "http", url: sinkUrl, timeout: seconds(2) }] },
    tenants: [
      {
        id: "acme",
        pathPrefix: "/acme",
        upstream: { url: `${originUrl}/acme`, keepalive },
        anonymous: true,
        routes: [{ id: "no-deletes", match: { interactions: ["delete"] }, action: "deny" }],
      },
    ],
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

interface Outcome {
  readonly id: string;
  readonly kind: Kind;
  /** When it was sent, ms since the load began. */
  readonly at: number;
  readonly status?: number;
  /** The body is an OperationOutcome served as application/fhir+json: the gateway answered it. */
  readonly outcome?: boolean;
  /** Why the client got no whole response (ECONNREFUSED, ECONNRESET, ...). */
  readonly error?: string;
}

function send(agent: http.Agent, port: number, kind: Kind, i: number, id: string, at: number): Promise<Outcome> {
  const k = KINDS[kind];
  return new Promise((resolve) => {
    const fail = (e: Error): void => resolve({ id, kind, at, error: (e as NodeJS.ErrnoException).code ?? e.message });
    const req = http.request({ host: "127.0.0.1", port, method: k.method, path: k.path(i), agent, headers: { "X-Request-ID": id }, timeout: 10_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (b: Buffer) => parts.push(b));
      res.on("error", fail);
      res.on("end", () => {
        if (!res.complete) return fail(new Error("incomplete response"));
        const status = res.statusCode ?? 0;
        let outcome = false;
        if (status >= 400 && (res.headers["content-type"] ?? "").startsWith("application/fhir+json")) {
          try {
            outcome = (JSON.parse(Buffer.concat(parts).toString("utf8")) as { resourceType?: unknown }).resourceType === "OperationOutcome";
          } catch {
            outcome = false;
          }
        }
        resolve({ id, kind, at, status, outcome });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", fail);
    req.end();
  });
}

/** `rate` requests a second for `durationMs`, at most `concurrency` at once over kept-alive connections, each with an X-Request-ID of its own. */
async function steadyLoad(port: number, start: number, rate: number, concurrency: number, durationMs: number): Promise<Outcome[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const out: Outcome[] = [];
  const run = `rr${start.toString(36)}`;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const at = start + (i * 1000) / rate;
      if (at >= start + durationMs) return;
      await sleep(at - Date.now());
      const id = `${run}-${i.toString().padStart(6, "0")}`;
      out.push(await send(agent, port, MIX[i % MIX.length]!, i, id, Date.now() - start));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return out;
}

/** The seal records in a spool dir, per stream in file order. */
function spoolSeals(spoolDir: string): Map<string, SealRecord[]> {
  const out = new Map<string, SealRecord[]>();
  for (const name of readdirSync(spoolDir).filter((f) => /^w\d+-\d+-\d+\.\d+\.jsonl$/.test(f)).sort()) {
    for (const line of readFileSync(path.join(spoolDir, name), "utf8").split("\n")) {
      if (!line.startsWith('{"t":"seal"')) continue;
      const s = JSON.parse(line) as SealRecord;
      out.set(s.stream, [...(out.get(s.stream) ?? []), s]);
    }
  }
  return out;
}

const countBy = <T,>(xs: readonly T[], key: (x: T) => string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
};

async function scenario(label: string, sinkDelayMs: number): Promise<void> {
  atOrigin.clear();
  originOther = 0;
  const sink = await startAuditSink({ delayMs: sinkDelayMs });
  const gw = await startGateway(policy(sink.url, 32), { workers: 2 });
  try {
    const versions = [gw.version];
    /** [began, ended] of each reload and of the restart, ms since the load began. */
    const windows: [string, number, number][] = [];
    const t0 = Date.now();
    const loading = steadyLoad(gw.port, t0, RATE, CONCURRENCY, LOAD_MS);

    for (const [n, at] of RELOADS_AT.entries()) {
      await sleep(t0 + at - Date.now());
      const began = Date.now() - t0;
      versions.push(await gw.reload(policy(sink.url, n === 0 ? 16 : 8)));
      windows.push([`reload ${n + 1}`, began, Date.now() - t0]);
    }
    await sleep(t0 + RESTART_AT - Date.now());
    const beforeRestart = await gw.metrics();
    const restartBegan = Date.now();
    await gw.restart();
    windows.push(["restart", restartBegan - t0, Date.now() - t0]);
    const load = await loading;
    const loadMs = Date.now() - t0;
    await sleep(500); // the last batches are sealed (flushEvery 50 ms) before the lag can say 0
    const { text, ms: catchUpMs } = await caughtUp(gw, sink, CATCH_UP_MS);
    // Said before the checks, so that a failing run says it too.
    const answered = load.filter((o) => o.status !== undefined);
    const failed = load.filter((o) => o.error !== undefined);
    const refused = answered.filter((o) => o.outcome === true);
    const kinds = countBy(load, (o) => (o.error !== undefined ? `failed:${o.error}` : o.kind));
    console.info(
      `reload-restart (${label}): ${load.length} requests in ${loadMs} ms (${JSON.stringify(kinds)}), upstream saw ${atOrigin.size}, ${refused.length} refusals, ` +
        `${failed.length} client failures (${failed.filter((o) => atOrigin.has(o.id)).length} of them seen upstream), ${sink.events().length} events ` +
        `(${new Set(sink.events().map((e) => e["request_id"])).size} distinct ids), ${sink.seals().length} seals in ${new Set(sink.seals().map((s) => s.stream)).size} streams, ` +
        `${sink.keys().length} keys, ${sink.duplicates()} duplicate POSTs, caught up ${catchUpMs} ms after the load; windows ${JSON.stringify(windows)}`,
    );

    // Each reload built a bundle of its own; the restart kept the last one.
    expect(new Set(versions).size).toBe(3);
    expect(gw.version).toBe(versions[2]);

    // What the client saw: the planned status for every whole response; failures only around a reload or the restart.
    const wrong = answered.filter((o) => o.status !== KINDS[o.kind].expect.status || (o.kind !== "search" && o.outcome !== true));
    expect(wrong.slice(0, 10), "responses other than planned").toEqual([]);
    const stray = failed.filter((o) => !windows.some(([, began, ended]) => o.at >= began - 50 && o.at <= ended + FAILURE_WINDOW_MS));
    expect(stray.slice(0, 10), `client failures outside the windows ${JSON.stringify(windows)}`).toEqual([]);
    expect(failed.map((o) => o.error).filter((e) => !/^(ECONNREFUSED|ECONNRESET|EPIPE)$/.test(e ?? "")), "client failure kinds").toEqual([]);

    // The recording upstream saw only the searches, each at most once, and never a refused id.
    const byId = new Map(load.map((o) => [o.id, o]));
    expect(originOther).toBe(0);
    expect([...atOrigin].filter(([id, n]) => n !== 1 || byId.get(id)?.kind !== "search").slice(0, 10), "upstream requests other than one per search").toEqual([]);
    const missedSearch = answered.filter((o) => o.kind === "search" && !atOrigin.has(o.id));
    expect(missedSearch.slice(0, 10), "answered searches the upstream did not see").toEqual([]);
    expect(refused.filter((o) => atOrigin.has(o.id)).slice(0, 10), "refusals that reached the upstream").toEqual([]);

    // Per stream, the chunks the sink took follow each other: a chunk sent again (a retry, a new
    // shipper after a reload) is the same seal range under the same key, which the sink drops.
    const reach = new Map<string, number>();
    const overlapping: string[] = [];
    for (const key of sink.keys()) {
      const m = /^(.*):(\d+)-(\d+)$/.exec(key);
      if (m === null) continue;
      const [, stream = "", first, last] = m;
      if (Number(first) <= (reach.get(stream) ?? -1)) overlapping.push(`${key} after ${stream}:..-${reach.get(stream)}`);
      reach.set(stream, Math.max(Number(last), reach.get(stream) ?? -1));
    }
    expect(overlapping.slice(0, 10), "chunks that overlap one taken before, under another key").toEqual([]);

    // The count: events at the sink are the upstream's requests plus the refusals, each once, and nothing else.
    const events = sink.events();
    const eventCount = new Map<string, number>();
    for (const e of events) eventCount.set(e["request_id"] as string, (eventCount.get(e["request_id"] as string) ?? 0) + 1);
    const expected = new Set([...atOrigin.keys(), ...refused.map((o) => o.id)]);
    const twice = [...eventCount].filter(([, n]) => n > 1).map(([id]) => id);
    const missing = [...expected].filter((id) => !eventCount.has(id));
    const extra = [...eventCount.keys()].filter((id) => !expected.has(id));
    expect({ twice: twice.slice(0, 10), missing: missing.slice(0, 10), missingCount: missing.length, extra: extra.slice(0, 10), extraCount: extra.length }).toEqual({
      twice: [],
      missing: [],
      missingCount: 0,
      extra: [],
      extraCount: 0,
    });
    expect(events.length).toBe(atOrigin.size + refused.length);
    expect(sink.conflicts(), "a retried key carried other bytes").toEqual([]);
    expect(sink.unkeyed()).toBe(0);

    // Each event says what happened: allowed searches, the refusals denied, with their status and reason.
    const mismatched = events.flatMap((e) => {
      const o = byId.get(e["request_id"] as string);
      if (o === undefined) return [];
      const want: Record<string, unknown> = { ...KINDS[o.kind].expect, method: KINDS[o.kind].method };
      if (o.status === undefined) delete want["status"]; // the client lost the answer: whatever nginx logged
      const diff = Object.keys(want).filter((k) => e[k] !== want[k]);
      return diff.length === 0 ? [] : [{ id: o.id, kind: o.kind, diff: Object.fromEntries(diff.map((k) => [k, e[k]])) }];
    });
    expect(mismatched.slice(0, 10), "events that do not say what happened").toEqual([]);
    // Every bundle version served load, and recorded it under its own version.
    const perPolicy = countBy(events, (e) => e["policy"] as string);
    expect(Object.keys(perPolicy).sort()).toEqual([...versions].sort());

    // The streams: 2 per worker generation (the start, 2 reloads, the restart), each from its open seal on.
    const seals = sink.seals();
    const byStream = new Map<string, SealRecord[]>();
    for (const s of seals) byStream.set(s.stream, [...(byStream.get(s.stream) ?? []), s]);
    expect(byStream.size).toBe(8);
    const opens = [...byStream.values()].map((ss) => ss[0]!);
    expect(opens.filter((s) => s.seq !== 0 || s.kind !== "open" || s.n !== 0), "streams without their open seal first").toEqual([]);
    expect(countBy(opens, (s) => String(s["policy"]))).toEqual({ [versions[0]!]: 2, [versions[1]!]: 2, [versions[2]!]: 4 });
    for (const [stream, ss] of byStream) {
      const holes = ss.flatMap((s, i) => (s.seq === i ? [] : [`at ${i}: seq ${s.seq}`]));
      expect(holes.slice(0, 5), `stream ${stream}`).toEqual([]);
    }
    expect(seals.filter((s) => s.kind === "gap" || s.dropped !== 0)).toEqual([]);
    expect(seals.filter((s) => s.kind === "batch").reduce((n, s) => n + s.n, 0)).toBe(events.length);
    // Every stream a reload or the restart ended has its close seal last, and the checkpoint that signs it after.
    const live = opens.filter((s) => (s["ts"] as number) >= restartBegan).map((s) => s.stream);
    expect(live).toHaveLength(2);
    const records = sink.records();
    for (const [stream, ss] of byStream) {
      const last = ss[ss.length - 1]!;
      if (live.includes(stream)) {
        expect(ss.filter((s) => s.kind === "close"), `live stream ${stream}`).toEqual([]);
        continue;
      }
      expect(ss.filter((s) => s.kind === "close").map((s) => s.seq), `ended stream ${stream}`).toEqual([last.seq]);
      const after = records.filter((r) => r["stream"] === stream).at(-1);
      expect(after, `the last record of ${stream}`).toMatchObject({ t: "checkpoint", seq: last.seq, hash: last["hash"] });
    }

    // Nothing dropped: the counter restarts with nginx, so it is read on both sides of the restart.
    expect(metric(beforeRestart, "fe_audit_dropped_total")).toBe(0);
    expect(metric(text, "fe_audit_dropped_total")).toBe(0);
    // The ended streams' segments left the spool once the sink had them.
    const spool = path.join(gw.stateDir, "audit", "spool");
    expect([...lastSeals(spool).keys()].filter((s) => !live.includes(s)), "ended streams still in the spool").toEqual([]);
    // What the sink holds verifies as an export: 8 whole chains, every checkpoint signed.
    const exported = path.join(keyDir, `sink-${sink.port}.jsonl`);
    writeFileSync(exported, sink.bodies());
    const v = verifyAudit({ sources: [exported], key: readFileSync(keyFile) });
    expect(v.findings.map(formatFinding)).toEqual([]);
    expect(v.sources[0]!.streams).toBe(8);
    expect(v.macsChecked).toBeGreaterThan(0);
    expect(gw.newSeriousLines()).toEqual([]);

    // The live streams close too, when nginx stops.
    await down({ stateDir: gw.stateDir });
    const onDisk = spoolSeals(spool);
    for (const stream of live) expect(onDisk.get(stream)?.at(-1)?.kind, `stream ${stream} after the stop`).toBe("close");
  } finally {
    await gw.stop();
    await sink.close();
  }
}

describe("audit across reloads and a graceful restart", () => {
  it("records each request the upstream saw and each refusal exactly once, and closes every stream it ends (a sink on loopback)", () => scenario("loopback sink", 0), 90_000);

  // A remote sink's round trip keeps a delivery in flight when a reload begins: the old workers'
  // shipper finishes its tick while the new workers' shipper starts from the cursor file.
  it("the same with a sink 300 ms away", () => scenario("sink 300 ms away", 300), 90_000);
});
