/**
 * The worker's side of the audit trail: events appended by the log phase to an in-memory
 * buffer (no I/O on the request path), sealed into batches and written to the worker's spool
 * stream by timers. A batch is sealed every `flush_ms`, or as soon as the buffer holds
 * `batch_events` or `batch_bytes` (a zero-delay timer then). A tick writes at most
 * TICK_BATCHES batches and schedules another tick for the rest, so no tick holds the worker
 * long (README: about 0.5 ms).
 *
 * At the limits, nothing is silent: an event that finds the buffer full is dropped, counted and
 * recorded in the chain as a gap seal; a spool past its size (fail-closed) still takes the
 * events of requests already answered, up to HEADROOM more, then drops them likewise.
 */
import * as policy from "../generated/policy";
import { auditKey, auditSigner } from "./key";
import { checkpointIfDue, closeStream, openStream, seal, segmentName, type SealKind, type Stream } from "./spool";

const cfg = policy.audit;
const format = string.format;
/**
 * How long a timer waits before going on with work it had to leave: a timer due "now" runs in
 * the same pass of nginx's timers as the one that made it, before any request gets a turn.
 */
export const CONTINUE_S = 0.001;
/**
 * A 64 KB batch costs about 160 µs to seal and write here (SHA-256, the join, one write(2);
 * bench/RESULTS.md), so two per tick keep a tick near 0.3 ms.
 */
const TICK_BATCHES = 2;
/** Spool bytes past `max_bytes` that fail-closed still writes (the refusals' own events). */
const HEADROOM_DIV = 16;

/** Buffered event lines are lines[head .. count-1]. */
const lines: string[] = [];
let head = 0;
let count = 0;
let bytes = 0;
/** Events lost since the last gap seal: the buffer was full, or the spool was past its size. */
let dropped = 0;
let droppedSpool = 0;
let scheduled = false;
let stream: Stream | undefined;
let broken = false;
/** Whether the spool was past its size at the last tick: fail-closed refuses new requests then. */
let full = false;

export function spoolFull(): boolean {
  return full;
}

/** False once the worker's stream could not be opened or written. */
export function writable(): boolean {
  return !broken;
}

function dict(): SharedDict | undefined {
  return ngx.shared.fe_audit;
}

function nowMs(): number {
  return math.floor(ngx.now() * 1000);
}

/** Counted in the audit dict, which /metrics renders (audit/metrics). */
export function countAudit(key: string, by: number): void {
  const d = dict();
  if (d !== undefined) d.incr(key, by, 0);
}

function noteWrite(n: number | undefined, err: string | undefined): void {
  if (n === undefined) {
    if (!broken) ngx.log(ngx.ERR, "audit: the spool stream cannot be written (", err ?? "?", "); events are dropped and counted until the worker restarts");
    broken = true;
    return;
  }
  countAudit("spool_bytes", n);
  countAudit("batches", 1);
}

/** Seals lines[from-1 .. to-1] (1-based bounds, as table.concat takes them). */
function writeSeal(kind: SealKind, from: number, to: number, gap: number, reason: string, durable: boolean, carried = 0, segment = ""): boolean {
  const s = stream;
  if (s === undefined) return false;
  let extra = reason === "" ? "" : ',"reason":"' + reason + '"';
  if (segment !== "") extra = extra + ',"segment":"' + segment + '"';
  if (carried > 0) extra = extra + ',"carried":' + format("%d", carried);
  const [n, err] = seal(s, kind, lines, from, to, nowMs(), gap, extra, durable);
  noteWrite(n, err);
  if (n !== undefined) {
    // Per segment, what it holds and what its gap seals record: removing it loses both.
    if (to >= from) countAudit("n\t" + segmentName(s), to - from + 1);
    if (gap > 0) countAudit("lost\t" + segmentName(s), gap);
  }
  return n !== undefined;
}

/** Records the events lost so far as gap seals, one per reason; they stay counted if even that fails. */
function writeGaps(): void {
  if (dropped > 0 && writeSeal("gap", 1, 0, dropped, "buffer-full", false)) {
    dropped = 0;
    countAudit("gaps", 1);
  }
  if (droppedSpool > 0 && writeSeal("gap", 1, 0, droppedSpool, "spool-full", false)) {
    droppedSpool = 0;
    countAudit("gaps", 1);
  }
}

function overLimit(next: number): boolean {
  if (cfg === undefined) return false;
  const d = dict();
  if (d === undefined) return false;
  const [total] = d.get("spool_bytes");
  return typeof total === "number" && total + next > cfg.max_bytes + cfg.max_bytes / HEADROOM_DIV;
}

/** Past this many sealed lines at the front, the live ones move down (amortized, bounded by the buffer). */
const COMPACT_AT = 4096;

function compact(): void {
  if (head === count) {
    for (let i = 0; i < count; i++) lines[i] = undefined as unknown as string;
    head = 0;
    count = 0;
    bytes = 0;
    return;
  }
  if (head < COMPACT_AT) return;
  const rest = count - head;
  for (let i = 0; i < rest; i++) lines[i] = lines[head + i]!;
  for (let i = rest; i < count; i++) lines[i] = undefined as unknown as string;
  head = 0;
  count = rest;
}

/** Seals up to one batch from the front of the buffer. Returns whether there is more. */
function flushOne(): boolean {
  if (cfg === undefined || head === count) return false;
  let n = 0;
  let size = 0;
  while (head + n < count && n < cfg.batch_events && (n === 0 || size + lines[head + n]!.length < cfg.batch_bytes)) {
    size = size + lines[head + n]!.length + 1;
    n = n + 1;
  }
  if (broken || overLimit(size)) {
    droppedSpool = droppedSpool + n;
    countAudit("dropped", n);
  } else {
    writeGaps();
    if (writeSeal("batch", head + 1, head + n, 0, "", false)) countAudit("events", n);
    else {
      dropped = dropped + n;
      countAudit("dropped", n);
    }
  }
  head = head + n;
  bytes = bytes - size;
  compact();
  return head < count;
}

function refreshFull(): void {
  const d = dict();
  if (d === undefined || cfg === undefined) return;
  const [total] = d.get("spool_bytes");
  full = typeof total === "number" && total > cfg.max_bytes;
}

function tick(this: void, premature: boolean): void {
  scheduled = false;
  if (premature) return;
  refreshFull();
  for (let i = 0; i < TICK_BATCHES; i++) {
    if (!flushOne()) {
      if (!broken && !overLimit(0)) writeGaps();
      const s = stream;
      if (s !== undefined) {
        const n = checkpointIfDue(s, nowMs());
        if (n > 0) countAudit("spool_bytes", n);
      }
      return;
    }
  }
  // More than a tick's worth: go on after the next turn of the event loop.
  if (!scheduled) {
    scheduled = true;
    ngx.timer.at(CONTINUE_S, tick);
  }
}

/** The log phase's append: no I/O, and a zero-delay timer when a batch is full. */
export function append(line: string): void {
  if (cfg === undefined) return;
  if (bytes + line.length > cfg.buffer_bytes) {
    dropped = dropped + 1;
    countAudit("dropped", 1);
    return;
  }
  lines[count] = line;
  count = count + 1;
  bytes = bytes + line.length + 1;
  if (!scheduled && (count >= cfg.batch_events || bytes >= cfg.batch_bytes)) {
    scheduled = true;
    ngx.timer.at(0, tick);
  }
}

/**
 * One event written before the response is released (the `durable` classes), as a batch of its
 * own: the chain orders batches as they are written, so it need not wait for the buffer's.
 * Returns false when it could not be written; the caller then answers 503 rather than release
 * an unaudited write.
 */
const single: string[] = [];
export function writeNow(line: string): boolean {
  const s = stream;
  if (cfg === undefined || s === undefined || broken) return false;
  single[0] = line;
  const [n, err] = seal(s, "batch", single, 1, 1, nowMs(), 0, "", cfg.fsync);
  noteWrite(n, err);
  if (n !== undefined) {
    countAudit("events", 1);
    countAudit("n\t" + segmentName(s), 1);
  }
  return n !== undefined;
}

/**
 * Events lost outside the buffer (a segment the shipper removed under drop-oldest): a gap
 * seal in this worker's stream says how many, why, and which segment, so verify-audit can tell
 * a stream head dropped unshipped from one shipped and pruned. It is sealed even when the
 * segment held no events (its seals went with it). `carried` is what the removed segment's own
 * gap seals had recorded: the new seal's `dropped` includes it (and says so in `carried`), so
 * the gap seals left in the spool always add up to every event lost, but the metric counts
 * only the new losses.
 */
export function noteLoss(n: number, carried: number, reason: string, segment: string): void {
  if (n > 0) countAudit("dropped", n);
  if (stream === undefined || broken) return;
  if (writeSeal("gap", 1, 0, n + carried, reason, false, carried, segment)) countAudit("gaps", 1);
}

/** init_worker: the worker's stream, and its flush timer. */
export function start(this: void): void {
  if (cfg === undefined) return;
  const [s, n] = openStream(
    { dir: cfg.spool_dir, segmentBytes: cfg.segment_bytes, checkpointEvery: cfg.checkpoint_every, checkpointMs: cfg.checkpoint_ms, key: auditKey(), keyId: cfg.key_id, signer: auditSigner() },
    ngx.worker.id() ?? 0,
    ngx.worker.pid(),
    nowMs(),
    policy.version,
  );
  if (s === undefined) {
    broken = true;
    ngx.log(ngx.ERR, "audit: cannot open a spool stream in ", cfg.spool_dir, " (", tostring(n), "); events are dropped and counted");
    return;
  }
  stream = s;
  countAudit("spool_bytes", n as number);
  ngx.timer.every(cfg.flush_ms / 1000, tick);
}

/** exit_worker: everything buffered, then the close seal and its checkpoint. */
export function stop(this: void): void {
  if (cfg === undefined || stream === undefined) return;
  while (flushOne()) {
    // Drain: the worker is leaving, there is no request to hold up.
  }
  if (!broken) writeGaps();
  if (!broken) countAudit("spool_bytes", closeStream(stream, nowMs()));
  stream = undefined;
}

/** For the unit tests and the bench: the stream's id. */
export function streamId(): string | undefined {
  return stream?.id;
}
