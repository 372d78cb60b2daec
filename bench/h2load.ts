/**
 * The k6-less driver: h2load (Debian's nghttp2-client) over HTTP/1.1. Its per-request times
 * come from a monotonic clock, unlike wrk's, whose CLOCK_REALTIME steps 12-35 times a second
 * on these VMs and breaks its percentiles. Latencies are read from `--log-file` (one row per
 * request: start in µs since the epoch, status, µs until the end of the response).
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";

export interface RunSpec {
  readonly port: number;
  /** Request paths, walked in order by each client (h2load `-i`). */
  readonly paths: readonly string[];
  readonly method: "GET" | "POST";
  readonly body?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly durationS: number;
  /** Open model: total requests per second across all connections. Closed loop when absent. */
  readonly rate?: number;
  /** Files for this run (URI list, body, per-request log). */
  readonly filePrefix: string;
}

export interface RunResult {
  readonly requests: number;
  readonly ok2xx: number;
  /** Responses outside 2xx. */
  readonly failed: number;
  /** Responses outside 2xx, by status. */
  readonly failedByStatus: Readonly<Record<string, number>>;
  /** Open model only: requests the rate asked for (rate x duration), to compare with `requests`. */
  readonly asked?: number;
  readonly seconds: number;
  /** Completed requests per second. */
  readonly rps: number;
  /** Latency percentiles, milliseconds. */
  readonly latencyMs: { readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number };
  /** Sorted per-request latencies, ms, for the chart. */
  readonly sortedMs: Float64Array;
  /** Closed loop only: mean latency against connections / throughput. */
  readonly littlesLaw?: { readonly expectedMeanMs: number; readonly ratio: number; readonly ok: boolean };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** Little's law for a closed loop: L = λW, so W should be connections / throughput. */
export function littlesLaw(connections: number, rps: number, meanMs: number, tolerance = 0.25): { expectedMeanMs: number; ratio: number; ok: boolean } {
  const expectedMeanMs = (connections / rps) * 1000;
  const ratio = meanMs / expectedMeanMs;
  return { expectedMeanMs, ratio, ok: Math.abs(ratio - 1) <= tolerance };
}

export function parseLog(text: string): { latenciesMs: number[]; statuses: number[]; firstStartUs: number; lastEndUs: number } {
  const latenciesMs: number[] = [];
  const statuses: number[] = [];
  let firstStartUs = Number.POSITIVE_INFINITY;
  let lastEndUs = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [start, status, dur] = line.split("\t");
    const s = Number(start);
    const us = Number(dur);
    if (!Number.isFinite(s) || !Number.isFinite(us)) continue;
    latenciesMs.push(us / 1000);
    statuses.push(Number(status));
    firstStartUs = Math.min(firstStartUs, s);
    lastEndUs = Math.max(lastEndUs, s + us);
  }
  return { latenciesMs, statuses, firstStartUs, lastEndUs };
}

export async function runH2load(spec: RunSpec): Promise<RunResult> {
  const uris = `${spec.filePrefix}.uris`;
  const log = `${spec.filePrefix}.log`;
  writeFileSync(uris, spec.paths.map((p) => `http://127.0.0.1:${spec.port}${p}`).join("\n") + "\n");
  // h2load appends to an existing log file; a reused prefix would count old requests again.
  rmSync(log, { force: true });
  const args = ["--h1", "-c", String(spec.connections), "-t", "1", "-D", String(spec.durationS), "-i", uris, "--log-file", log];
  // h2load's -c counts clients; with --rps each client sends at that rate.
  if (spec.rate !== undefined) args.push("--rps", String(spec.rate / spec.connections));
  for (const [k, v] of Object.entries(spec.headers)) args.push("-H", `${k}: ${v}`);
  if (spec.method === "POST") {
    const bodyFile = `${spec.filePrefix}.body`;
    writeFileSync(bodyFile, spec.body ?? "");
    args.push("-d", bodyFile);
  }
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, output: out }));
  });
  if (code !== 0) throw new Error(`h2load failed (${String(code)}): ${output}`);
  const parsed = parseLog(readFileSync(log, "utf8"));
  const sorted = Float64Array.from(parsed.latenciesMs).sort();
  const ok2xx = parsed.statuses.filter((s) => s >= 200 && s < 300).length;
  const failedByStatus: Record<string, number> = {};
  for (const st of parsed.statuses) if (st < 200 || st >= 300) failedByStatus[String(st)] = (failedByStatus[String(st)] ?? 0) + 1;
  const seconds = (parsed.lastEndUs - parsed.firstStartUs) / 1e6;
  const mean = parsed.latenciesMs.reduce((a, b) => a + b, 0) / Math.max(1, parsed.latenciesMs.length);
  const rps = parsed.latenciesMs.length / Math.max(seconds, 1e-9);
  return {
    requests: parsed.latenciesMs.length,
    ok2xx,
    failed: parsed.latenciesMs.length - ok2xx,
    failedByStatus,
    ...(spec.rate !== undefined ? { asked: spec.rate * spec.durationS } : {}),
    seconds,
    rps,
    latencyMs: { mean, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9), max: sorted[sorted.length - 1] ?? Number.NaN },
    sortedMs: sorted,
    ...(spec.rate === undefined ? { littlesLaw: littlesLaw(spec.connections, rps, mean) } : {}),
  };
}
