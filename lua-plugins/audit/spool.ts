/**
 * The spool's writer side: one hash-chained stream per worker process, in segment files, in
 * the format of README.md ("The spool format"). Every append is one write(2) of whole records,
 * so a worker killed mid-flight leaves whole batches or none of one. Pure over audit/fs and the
 * crypto module, so it runs under plain LuaJIT too (test/unit/lua/audit-spool).
 */
import type { CData } from "ffi";
import { ed25519Sign, hmacSha256, sha256Pair, toHex } from "../auth/crypto";
import { closeFd, makeDirs, openAppend, sizeOf, sync, writeAll } from "./fs";

const format = string.format;
const concat = table.concat;
const NOLINES: string[] = [];

export type SealKind = "open" | "batch" | "gap" | "close";

export interface StreamConfig {
  readonly dir: string;
  readonly segmentBytes: number;
  readonly checkpointEvery: number;
  readonly checkpointMs: number;
  readonly key: string;
  readonly keyId: string;
  /** An Ed25519 private key: checkpoints are signed with it instead of the HMAC. */
  readonly signer?: CData;
}

export interface Stream {
  readonly id: string;
  readonly cfg: StreamConfig;
  seq: number;
  /** Hash of the last seal; "" before the open seal. */
  prev: string;
  segment: number;
  fd: number;
  segmentBytes: number;
  /** Seals since the last checkpoint, and when that was. */
  sinceCheckpoint: number;
  checkpointAt: number;
  /** Seq of the last seal a checkpoint signed. */
  signed: number;
  /** Set by a failed write: the stream writes nothing more (the chain would have a hole). */
  broken: boolean;
}

export type WriteError = "open_failed" | "write_failed" | "broken";

/** The file name of the segment the stream writes now. */
export function segmentName(s: Stream): string {
  return format("%s.%06d.jsonl", s.id, s.segment);
}

function segmentPath(s: Stream): string {
  return s.cfg.dir + "/" + segmentName(s);
}

/** The bytes a seal's hash covers (README): everything but the event lines. */
function sealHead(prev: string, stream: string, seq: number, kind: SealKind, ts: number, n: number, dropped: number): string {
  return prev + "\n" + stream + "\n" + format("%d", seq) + "\n" + kind + "\n" + format("%d", ts) + "\n" + format("%d", n) + "\n" + format("%d", dropped) + "\n";
}

/** The text a checkpoint signs (README "Checkpoints"), under either algorithm. */
function checkpointText(stream: string, seq: number, hash: string, ts: number): string {
  return "fhir-edge-audit-checkpoint/1\n" + stream + "\n" + format("%d", seq) + "\n" + hash + "\n" + format("%d", ts);
}

export function checkpointMac(key: string, stream: string, seq: number, hash: string, ts: number): string {
  return toHex(hmacSha256(key, checkpointText(stream, seq, hash, ts)));
}

function checkpointLine(s: Stream, ts: number): string {
  s.sinceCheckpoint = 0;
  s.checkpointAt = ts;
  s.signed = s.seq;
  const head = '{"t":"checkpoint","stream":"' + s.id + '","seq":' + format("%d", s.seq) + ',"hash":"' + s.prev + '","ts":' + format("%d", ts) + ',"key_id":"' + s.cfg.keyId;
  const signer = s.cfg.signer;
  if (signer === undefined) return head + '","alg":"HMAC-SHA256","mac":"' + checkpointMac(s.cfg.key, s.id, s.seq, s.prev, ts) + '"}\n';
  // A signature libcrypto refused is written as empty: verify-audit reports the checkpoint forged.
  const sig = ed25519Sign(signer, checkpointText(s.id, s.seq, s.prev, ts));
  return head + '","alg":"Ed25519","sig":"' + (sig === undefined ? "" : toHex(sig)) + '"}\n';
}

/** Opens the next segment when this write would take the current one past its size. */
function roll(s: Stream, bytes: number): boolean {
  if (s.fd >= 0 && (s.segmentBytes === 0 || s.segmentBytes + bytes <= s.cfg.segmentBytes)) return true;
  if (s.fd >= 0) {
    closeFd(s.fd);
    s.segment = s.segment + 1;
  }
  s.fd = openAppend(segmentPath(s));
  if (s.fd < 0) return false;
  s.segmentBytes = sizeOf(s.fd);
  return true;
}

/**
 * Seals `lines[from..to]` (none for open, gap and close) as the stream's next record, with a
 * checkpoint after it when one is due, in one write. Returns the bytes written.
 */
export function seal(s: Stream, kind: SealKind, lines: readonly string[], from: number, to: number, ts: number, dropped: number, extra: string, durable: boolean): LuaMultiReturn<[number, undefined] | [undefined, WriteError]> {
  if (s.broken) return $multi(undefined, "broken");
  const seq = s.seq + 1;
  const n = to - from + 1;
  // The batch's lines, each with its newline: what the hash covers after the head, and the start
  // of the write. Joined without the last newline, which goes into the one concatenation of the
  // write below: a batch is copied twice (join, write buffer), not three times.
  const body = n > 0 ? concat(lines as string[], "\n", from, to) : "";
  const nl = n > 0 ? "\n" : "";
  const hash = toHex(sha256Pair(sealHead(s.prev, s.id, seq, kind, ts, n, dropped), body, nl));
  const sealLine = '{"t":"seal","stream":"' + s.id + '","seq":' + format("%d", seq) + ',"kind":"' + kind + '","ts":' + format("%d", ts) + ',"n":' + format("%d", n) +
    ',"dropped":' + format("%d", dropped) + ',"prev":"' + s.prev + '","hash":"' + hash + '"' + extra + "}\n";
  s.seq = seq;
  s.prev = hash;
  s.sinceCheckpoint = s.sinceCheckpoint + 1;
  const cfg = s.cfg;
  const due = kind === "close" || s.sinceCheckpoint >= cfg.checkpointEvery || ts - s.checkpointAt >= cfg.checkpointMs;
  const tail = due ? sealLine + checkpointLine(s, ts) : sealLine;
  const data = body + (nl + tail);
  if (!roll(s, data.length)) {
    s.broken = true;
    return $multi(undefined, "open_failed");
  }
  if (!writeAll(s.fd, data) || (durable && !sync(s.fd))) {
    s.broken = true;
    return $multi(undefined, "write_failed");
  }
  s.segmentBytes = s.segmentBytes + data.length;
  return $multi(data.length, undefined);
}

/**
 * A checkpoint of the last seal when the interval has passed since the last one and it is not
 * signed yet: an idle worker's last batches are signed within the interval, not at its next
 * request. Returns the bytes written (0 when none was due).
 */
export function checkpointIfDue(s: Stream, ts: number): number {
  if (s.broken || s.fd < 0 || s.signed === s.seq || ts - s.checkpointAt < s.cfg.checkpointMs) return 0;
  const line = checkpointLine(s, ts);
  if (!writeAll(s.fd, line)) {
    s.broken = true;
    return 0;
  }
  s.segmentBytes = s.segmentBytes + line.length;
  return line.length;
}

/** A new stream, its open seal written: `w<worker>-<ms>-<pid>`. */
export function openStream(cfg: StreamConfig, worker: number, pid: number, nowMs: number, policy: string): LuaMultiReturn<[Stream, number] | [undefined, WriteError]> {
  makeDirs(cfg.dir);
  const s: Stream = {
    id: format("w%d-%d-%d", worker, nowMs, pid),
    cfg,
    seq: -1,
    prev: "",
    segment: 0,
    fd: -1,
    segmentBytes: 0,
    sinceCheckpoint: 0,
    checkpointAt: nowMs,
    signed: -1,
    broken: false,
  };
  const extra = ',"pid":' + format("%d", pid) + ',"worker":' + format("%d", worker) + ',"policy":"' + policy + '"';
  const [n, err] = seal(s, "open", NOLINES, 1, 0, nowMs, 0, extra, false);
  if (n === undefined) return $multi(undefined, err);
  return $multi(s, n);
}

/** The close seal and its checkpoint; the stream takes nothing after. */
export function closeStream(s: Stream, ts: number): number {
  const [n] = seal(s, "close", NOLINES, 1, 0, ts, 0, "", true);
  closeFd(s.fd);
  s.fd = -1;
  s.broken = true;
  return n ?? 0;
}
