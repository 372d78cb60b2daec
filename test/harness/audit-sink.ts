/**
 * A recording HTTP audit sink (the peer of the gateway's `kind: "http"` sink): it takes each
 * NDJSON POST, keeps its Idempotency-Key and lines, and answers 200 with a small JSON body
 * and its Content-Length (or, with `{ status: 204 }`, 204 No Content). The shipper delivers
 * at-least-once, so a POST whose key was already taken is counted as a duplicate and its lines
 * are not added again; the same key with other bytes is a conflict (a retry must resend the
 * same chunk).
 *
 * It can go away like a crashed peer (`down()`: the listening socket closed and open
 * connections destroyed, so the gateway sees connection refused) and come back on the same
 * port (`up()`), or stay up and refuse (`refuse(503)`).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import type { OwnGateway } from "./gateway.ts";

export interface SealRecord {
  readonly t: "seal";
  readonly stream: string;
  readonly seq: number;
  readonly kind: "open" | "batch" | "gap" | "close";
  readonly n: number;
  readonly dropped: number;
  readonly [k: string]: unknown;
}

export interface AuditSink {
  /** The sink's URL for the policy: `http://127.0.0.1:<port>/ingest`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting: the listening socket closes and open connections are destroyed. */
  down(): Promise<void>;
  /** Listens again on the same port and takes POSTs. */
  up(): Promise<void>;
  /** Answers every POST with this status (a non-2xx: the chunk is not taken), or takes them again with `undefined`. */
  refuse(status: number | undefined): void;
  /** Event lines (no `"t"`) of the taken POSTs, each key once, in arrival order. */
  events(): Record<string, unknown>[];
  /** Seal records of the taken POSTs, each key once, in arrival order. */
  seals(): SealRecord[];
  /** Every chain record (seals and checkpoints) of the taken POSTs, each key once, in arrival order. */
  records(): Record<string, unknown>[];
  /** POSTs taken whose key had been taken before. */
  duplicates(): number;
  /** Keys taken again with different bytes: a retry that did not resend its chunk. */
  conflicts(): string[];
  /** The bodies of the taken POSTs, each key once, in arrival order: an export verify-audit reads. */
  bodies(): string;
  /** Distinct keys taken, in arrival order. */
  keys(): string[];
  /** POSTs seen, taken or refused (not those cut off by `down()`). */
  posts(): number;
  /** POSTs answered with the `refuse` status. */
  refused(): number;
  /** POSTs without an Idempotency-Key (each is kept, none is a duplicate). */
  unkeyed(): number;
  close(): Promise<void>;
}

export interface AuditSinkOptions {
  /** @default 0 (an ephemeral port) */
  readonly port?: number;
  /** The answer to a POST it takes. @default 200 */
  readonly status?: 200 | 201 | 202 | 204;
  /** How long each answer takes, as a remote sink's round trip would (the POST is taken when it arrives). @default 0 */
  readonly delayMs?: number;
}

export async function startAuditSink({ port = 0, status = 200, delayMs = 0 }: AuditSinkOptions = {}): Promise<AuditSink> {
  const digests = new Map<string, string>();
  const order: string[] = [];
  const eventLines: Record<string, unknown>[] = [];
  const taken: string[] = [];
  const chain: Record<string, unknown>[] = [];
  const conflicting: string[] = [];
  let dup = 0;
  let seen = 0;
  let refusedCount = 0;
  let noKey = 0;
  let refuseWith: number | undefined;
  const sockets = new Set<Socket>();

  const take = (body: string): void => {
    taken.push(body);
    for (const line of body.split("\n")) {
      if (line === "") continue;
      const doc = JSON.parse(line) as Record<string, unknown>;
      if (doc["t"] === undefined) eventLines.push(doc);
      else chain.push(doc);
    }
  };

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      seen += 1;
      const later = (answer: () => void): void => {
        if (delayMs > 0) setTimeout(answer, delayMs);
        else answer();
      };
      if (refuseWith !== undefined) {
        refusedCount += 1;
        const code = refuseWith;
        later(() => {
          res.writeHead(code, { "content-length": 0 });
          res.end();
        });
        return;
      }
      const body = Buffer.concat(parts).toString("utf8");
      const key = req.headers["idempotency-key"];
      const digest = createHash("sha256").update(body).digest("hex");
      if (typeof key !== "string") {
        noKey += 1;
        take(body);
      } else if (digests.has(key)) {
        dup += 1;
        if (digests.get(key) !== digest) conflicting.push(key);
      } else {
        digests.set(key, digest);
        order.push(key);
        take(body);
      }
      later(() => {
        if (status === 204) {
          res.writeHead(204);
          res.end();
          return;
        }
        const answer = JSON.stringify({ ok: true });
        res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) });
        res.end(answer);
      });
    });
  });
  server.keepAliveTimeout = 65_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  const listen = (p: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(p, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  const bound = await listen(port);
  return {
    url: `http://127.0.0.1:${bound}/ingest`,
    port: bound,
    down: stop,
    async up() {
      if (!server.listening) await listen(bound);
    },
    refuse(status) {
      refuseWith = status;
    },
    events: () => [...eventLines],
    seals: () => chain.filter((r): r is SealRecord => r["t"] === "seal"),
    records: () => [...chain],
    duplicates: () => dup,
    conflicts: () => [...conflicting],
    bodies: () => taken.join(""),
    keys: () => [...order],
    posts: () => seen,
    refused: () => refusedCount,
    unkeyed: () => noKey,
    close: stop,
  };
}

/**
 * The seq of the last seal of each stream in a spool dir, as written so far: a sink that has
 * these has everything written before the call. A segment the shipper removes meanwhile is
 * skipped (a later one of its stream, or none left, says the rest).
 */
export function lastSeals(spoolDir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const name of readdirSync(spoolDir).filter((f) => /^w\d+-\d+-\d+\.\d+\.jsonl$/.test(f)).sort()) {
    let text: string;
    try {
      text = readFileSync(`${spoolDir}/${name}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (!line.startsWith('{"t":"seal"')) continue;
      const s = JSON.parse(line) as SealRecord;
      out.set(s.stream, s.seq);
    }
  }
  return out;
}

/** A series' value in Prometheus text (NaN when absent). */
export function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}]/g, "\\$&")} (\\d+)$`, "m").exec(text);
  return m === null ? NaN : Number(m[1]);
}

/**
 * Polls until the sink has taken the last seal of every stream in the spool and the gateway
 * reports no lag on two readings in a row; the last metrics text. (The lag gauge alone is not
 * enough: the shipper sets it after a tick's deliveries, so it reads 0 before the first one.)
 */
export async function caughtUp(gw: OwnGateway, sink: AuditSink, timeoutMs: number, sinkId = "siem"): Promise<{ text: string; ms: number }> {
  const t0 = Date.now();
  const spool = path.join(gw.stateDir, "audit", "spool");
  let zeros = 0;
  let text = "";
  let behind: string[] = [];
  while (Date.now() - t0 < timeoutMs) {
    const taken = new Map<string, number>();
    for (const s of sink.seals()) taken.set(s.stream, Math.max(s.seq, taken.get(s.stream) ?? -1));
    behind = [...lastSeals(spool)].filter(([stream, seq]) => (taken.get(stream) ?? -1) < seq).map(([stream, seq]) => `${stream} at ${taken.get(stream) ?? -1} of ${seq}`);
    text = await gw.metrics();
    zeros = behind.length === 0 && metric(text, `fe_audit_sink_lag_bytes{sink="${sinkId}"}`) === 0 ? zeros + 1 : 0;
    if (zeros >= 2) return { text, ms: Date.now() - t0 };
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`the sink is still behind after ${timeoutMs} ms (${behind.join(", ")}):\n${text.split("\n").filter((l) => l.startsWith("fe_audit")).join("\n")}`);
}
