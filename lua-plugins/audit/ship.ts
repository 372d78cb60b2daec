/**
 * The shipper: one worker of the node (whoever holds the `shipper` lock in the audit dict,
 * renewed every tick, so a reload hands it over within LOCK_TTL) reads the spool segments and
 * gives each sink its chunks in order, with one cursor per sink and segment, kept in
 * `<spool>/cursors/<sink>.json` after every chunk a sink took. A sink that fails is retried
 * with exponential backoff, with the same chunk (the cursor file keeps the pending range, so a
 * new shipper retries the same bytes under the same idempotency key): at-least-once, in order
 * per stream.
 *
 * It also keeps the spool bounded: a segment is removed once it is complete (a later segment
 * of its stream exists, or its worker is gone) and every sink has all of it. Past `max_bytes`,
 * `drop-oldest` removes the oldest segments whatever the sinks have, counts their events and
 * records a gap seal (`spool-dropped`) in this worker's stream; `fail-closed` leaves that to
 * the access phase (audit/step).
 */
import * as cjson from "cjson.safe";
import * as policy from "../generated/policy";
import type { AuditSinkIR } from "../generated/policy";
import { alive, fileSize, list, makeDirs, readAll, readAt, remove, replaceFile } from "./fs";
import { deliver, type Chunk } from "./sinks";
import { CONTINUE_S, noteLoss } from "./writer";

const cfg = policy.audit;
const find = string.find;
const sub = string.sub;
const format = string.format;
const tonumber_ = tonumber as (this: void, v: string) => number | undefined;

export const SHIP_EVERY = 0.2;
const LOCK_TTL = 5;
/** Chunks a sink is given per tick, at most. */
const CHUNKS_PER_TICK = 8;
/**
 * A tick's file work (reading chunks, a file sink's writes) stops after this much of the
 * worker's CPU time, so it is never kept from its requests for long; a tick that stopped with
 * work left runs again after the next pass through the event loop (CONTINUE_S, as the writer's
 * ticks do). Measured with
 * os.clock, not ngx.update_time: that would move nginx's clock, and a timer due "now" is run
 * in the same pass as the one that made it, so a chain of slices would run back to back.
 */
const SLICE = 0.0005;
let sliceEnd = 0;
let behind = false;
const clock = os.clock;

/** Whether this tick has used its slice (checked between chunks, so each tick ships at least one). */
function sliceOver(): boolean {
  if (clock() < sliceEnd) return false;
  behind = true;
  return true;
}
const BACKOFF_MIN = 0.5;
const BACKOFF_MAX = 30;
/**
 * A sink's cursor file is rewritten at most this often while it ships (and at once when a
 * delivery fails, when the shipper stops or goes idle, and when segments are pruned). Writing it
 * after every chunk (a create, a write and a rename over the old file, which ext4 flushes) cost
 * about 1 us per request at 30k req/s. A worker killed -9 may send up to this much again: at
 * least once, as before.
 */
const CURSOR_EVERY = 0.1;

interface Segment {
  readonly name: string;
  readonly stream: string;
  /** When its worker started (ms): orders streams by age. */
  readonly born: number;
  readonly pid: number;
  readonly index: number;
  readonly path: string;
  readonly size: number;
  complete: boolean;
}

interface Pending {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

interface SinkState {
  readonly sink: AuditSinkIR;
  off: LuaTable<string, number>;
  pending: Pending | undefined;
  nextAt: number;
  delay: number;
  loaded: boolean;
  /** Delivered past what the cursor file says, and when that file was written. */
  dirty: boolean;
  savedAt: number;
}

const sinks: SinkState[] = [];
if (cfg !== undefined) for (const s of cfg.sinks) sinks.push({ sink: s, off: new LuaTable(), pending: undefined, nextAt: 0, delay: BACKOFF_MIN, loaded: false, dirty: false, savedAt: 0 });
/**
 * What a chunk reads: a batch and its seal, about. A 256 KB chunk took about 2 ms to read and
 * write to a file sink here, past a tick's slice; a batch bigger than this (one long line past
 * batchBytes) is read with a bigger one.
 */
const chunkBytes = cfg === undefined ? 0 : math.max(64 * 1024, cfg.batch_bytes + 16384);
let running = false;
let observer = "fhir-edge";

function dict(): SharedDict | undefined {
  return ngx.shared.fe_audit;
}

function cursorPath(id: string): string {
  return cfg!.spool_dir + "/cursors/" + id + ".json";
}

function loadCursor(s: SinkState): void {
  s.loaded = true;
  const raw = readAll(cursorPath(s.sink.id));
  if (raw === undefined) return;
  const [doc] = cjson.decode(raw);
  if (type(doc) !== "table") return;
  const d = doc as { off?: Record<string, number>; pending?: Pending };
  if (d.off !== undefined) for (const [k, v] of pairs(d.off)) if (typeof v === "number") s.off.set(k as string, v);
  const p = d.pending;
  if (p !== undefined && typeof p.name === "string" && typeof p.from === "number" && typeof p.to === "number") s.pending = p;
}

function saveCursor(s: SinkState): boolean {
  const off: Record<string, number> = {};
  let any = false;
  for (const [k, v] of pairs(s.off)) {
    off[k] = v;
    any = true;
  }
  // An empty object encodes as [] in cjson; a reader takes either.
  const [data] = cjson.encode({ off: any ? off : undefined, pending: s.pending });
  const ok = data !== undefined && replaceFile(cursorPath(s.sink.id), data);
  if (ok) {
    s.dirty = false;
    s.savedAt = ngx.now();
  }
  return ok;
}

/**
 * The cursor files, when deliveries are not in them yet; only by the shipper that holds the
 * lock, since another worker's files would be overwritten with what this one knew.
 */
function saveDirty(d: SharedDict): void {
  const [holder] = d.get("shipper");
  if (holder !== ngx.worker.pid()) return;
  for (const st of sinks) if (st.dirty) saveCursor(st);
}

const SEGMENT = "^(w%d+%-(%d+)%-(%d+))%.(%d+)%.jsonl$";

function segments(): Segment[] {
  const out: Segment[] = [];
  const dir = cfg!.spool_dir;
  for (const name of list(dir)) {
    const [, , stream, born, pid, index] = find(name, SEGMENT);
    if (stream === undefined) continue;
    const path = dir + "/" + name;
    const size = fileSize(path);
    if (size < 0) continue;
    out.push({ name, stream: stream as string, born: tonumber_(born as string)!, pid: tonumber_(pid as string)!, index: tonumber_(index as string)!, path, size, complete: false });
  }
  table.sort(out, (a, b) => (a.stream === b.stream ? a.index < b.index : a.stream < b.stream));
  // Complete: nothing more will be written to it.
  const gone = new LuaTable<number, boolean>();
  for (let i = 0; i < out.length; i++) {
    const s = out[i]!;
    const next = out[i + 1];
    if (next !== undefined && next.stream === s.stream) s.complete = true;
    else {
      let dead = gone.get(s.pid);
      if (dead === undefined) {
        dead = !alive(s.pid);
        gone.set(s.pid, dead);
      }
      s.complete = dead;
    }
  }
  return out;
}

const CHAIN = '\n{"t":';
const SEAL_SEQ = '^{"t":"seal","stream":"[^"]*","seq":(%d+)';
const CHECKPOINT_SEQ = '^{"t":"checkpoint","stream":"[^"]*","seq":(%d+)';

/**
 * How much of `data` is whole lines up to and including its last chain record (0 when it has
 * none), the seqs of its first and last seals (-1 without), and the seq its last checkpoint
 * signs (-1 without). Chain records start a line, so a plain search for a newline and `{"t":`
 * finds them without reading each event line.
 */
function cut(data: string): LuaMultiReturn<[number, number, number, number]> {
  let lastEnd = 0;
  let first = -1;
  let last = -1;
  let ck = -1;
  let at = sub(data, 1, 5) === '{"t":' ? 1 : 0;
  let from = 1;
  for (;;) {
    if (at === 0) {
      const [nl] = find(data, CHAIN, from, true);
      if (nl === undefined) break;
      at = nl + 1;
    }
    const [eol] = find(data, "\n", at, true);
    if (eol === undefined) break;
    const [, , seq] = find(data, SEAL_SEQ, at);
    if (seq !== undefined) {
      last = tonumber_(seq as string)!;
      if (first < 0) first = last;
    } else {
      const [, , signed] = find(data, CHECKPOINT_SEQ, at);
      if (signed !== undefined) ck = tonumber_(signed as string)!;
    }
    lastEnd = eol;
    from = eol;
    at = 0;
  }
  return $multi(lastEnd, first, last, ck);
}

/** A chunk for a sink, with the spool range it was read from. */
interface Next extends Chunk {
  readonly range: Pending;
}

/**
 * The next chunk of a segment for a sink: the pending one again, or whole lines from its
 * cursor; `false` when the pending range no longer exists (a segment removed under drop-oldest).
 */
function nextChunk(st: SinkState, seg: Segment): Next | false | undefined {
  const p = st.pending;
  if (p !== undefined && p.name === seg.name) {
    const again = readAt(seg.path, p.from, p.to - p.from);
    if (again === undefined || again.length !== p.to - p.from) return false;
    const [, first, last, ck] = cut(again);
    return { range: p, data: again, stream: seg.stream, firstSeq: first, lastSeq: last, checkpointSeq: ck };
  }
  const from = st.off.get(seg.name) ?? 0;
  if (from >= seg.size) return undefined;
  let want = chunkBytes;
  for (;;) {
    const data = readAt(seg.path, from, math.min(want, seg.size - from));
    if (data === undefined || data === "") return undefined;
    const [whole, first, last, ck] = cut(data);
    if (whole > 0) return { range: { name: seg.name, from, to: from + whole }, data: whole === data.length ? data : sub(data, 1, whole), stream: seg.stream, firstSeq: first, lastSeq: last, checkpointSeq: ck };
    // No chain record yet: the batch is still being written, or it is longer than a chunk.
    if (data.length < want) return undefined;
    want = want * 2;
  }
}

function shipTo(st: SinkState, segs: readonly Segment[], now: number): void {
  if (now < st.nextAt) return;
  if (!st.loaded) loadCursor(st);
  let given = 0;
  const held = new LuaTable<string, boolean>();
  for (const seg of segs) {
    if (given >= CHUNKS_PER_TICK) {
      behind = true;
      return;
    }
    if (held.get(seg.stream) === true) continue;
    for (;;) {
      const next = nextChunk(st, seg);
      if (next === false) {
        st.pending = undefined;
        break;
      }
      if (next === undefined) break;
      const range = next.range;
      if (!deliver(st.sink, next, observer)) {
        if (st.pending === undefined) {
          st.pending = range;
          saveCursor(st);
        }
        countAudit("fail\t" + st.sink.id, 1);
        st.nextAt = now + st.delay;
        st.delay = math.min(st.delay * 2, BACKOFF_MAX);
        return;
      }
      st.delay = BACKOFF_MIN;
      st.pending = undefined;
      st.off.set(seg.name, range.to);
      st.dirty = true;
      if (now - st.savedAt >= CURSOR_EVERY) saveCursor(st);
      countAudit("shipped\t" + st.sink.id, range.to - range.from);
      given = given + 1;
      if (given >= CHUNKS_PER_TICK) {
        behind = true;
        return;
      }
      if (sliceOver()) return;
    }
    // A stream's later segments wait until this one is all delivered.
    if ((st.off.get(seg.name) ?? 0) < seg.size || !seg.complete) held.set(seg.stream, true);
  }
}

function countAudit(key: string, by: number): void {
  const d = dict();
  if (d !== undefined) d.incr(key, by, 0);
}

function removeSegment(seg: Segment): void {
  remove(seg.path);
  for (const st of sinks) {
    st.off.delete(seg.name);
    if (st.pending !== undefined && st.pending.name === seg.name) st.pending = undefined;
  }
  const d = dict();
  if (d !== undefined) {
    d.delete("n\t" + seg.name);
    d.delete("lost\t" + seg.name);
  }
}

/**
 * What removing a segment loses: its events, and the losses its own gap seals recorded (which
 * go with it, so the new gap seal carries them). The writers count both per segment in the
 * dict; a segment from before a restart is not there, and is read once to count them.
 */
function segmentLosses(seg: Segment): LuaMultiReturn<[number, number]> {
  const d = dict();
  const [n] = d === undefined ? [undefined] : d.get("n\t" + seg.name);
  if (typeof n === "number") {
    const [lost] = d!.get("lost\t" + seg.name);
    return $multi(n, typeof lost === "number" ? lost : 0);
  }
  const raw = readAll(seg.path);
  if (raw === undefined) return $multi(0, 0);
  let events = 0;
  let carried = 0;
  let at = 1;
  while (at <= raw.length) {
    const [nl] = find(raw, "\n", at, true);
    const stop = nl === undefined ? raw.length : nl - 1;
    if (stop >= at) {
      if (sub(raw, at, at + 4) !== '{"t":') events = events + 1;
      else {
        const line = sub(raw, at, stop);
        const [gap] = find(line, '"kind":"gap"', 1, true);
        if (gap !== undefined) {
          const [, , k] = find(line, '"dropped":(%d+)');
          carried = carried + (tonumber_((k ?? "0") as string) ?? 0);
        }
      }
    }
    at = stop + 2;
  }
  return $multi(events, carried);
}

/** Removes what every sink has; under drop-oldest, also the oldest segments past the bound. */
function prune(segs: Segment[]): number {
  let total = 0;
  for (const seg of segs) total = total + seg.size;
  const kept: Segment[] = [];
  let changed = false;
  for (const seg of segs) {
    let taken = seg.complete && sinks.length > 0;
    for (const st of sinks) if ((st.off.get(seg.name) ?? 0) < seg.size) taken = false;
    if (taken) {
      removeSegment(seg);
      total = total - seg.size;
      changed = true;
    } else kept.push(seg);
  }
  if (cfg!.at_limit === "drop-oldest" && total > cfg!.max_bytes) {
    // Oldest first across streams: the segment files' start times order them.
    const byAge: Segment[] = [];
    for (const seg of kept) byAge.push(seg);
    table.sort(byAge, (a, b) => (a.born === b.born ? a.name < b.name : a.born < b.born));
    const d = dict();
    for (const seg of byAge) {
      if (total <= cfg!.max_bytes * 0.9) break;
      // Never the segment this worker writes now: dropping it would cut its own chain.
      if (!seg.complete && seg.pid === ngx.worker.pid()) continue;
      const [n, carried] = segmentLosses(seg);
      removeSegment(seg);
      total = total - seg.size;
      changed = true;
      noteLoss(n, carried, "spool-dropped", seg.name);
      ngx.log(ngx.WARN, "audit: spool over ", format("%d", cfg!.max_bytes), " bytes: dropped segment ", seg.name, " (", format("%d", n), " events) before every sink had it");
    }
  }
  if (changed) for (const st of sinks) saveCursor(st);
  return total;
}

/** Takes or renews the shipper lock: "new" when this worker just took it over, "held" when it had it. */
function holdLock(d: SharedDict): "new" | "held" | undefined {
  const me = ngx.worker.pid();
  const [ok] = d.add("shipper", me, LOCK_TTL);
  if (ok) return "new";
  const [holder] = d.get("shipper");
  if (holder !== me) return undefined;
  d.set("shipper", me, LOCK_TTL);
  return "held";
}

function releaseLock(d: SharedDict): void {
  const [holder] = d.get("shipper");
  if (holder === ngx.worker.pid()) d.delete("shipper");
}

function tick(this: void, premature: boolean): void {
  const d = dict();
  if (d === undefined || cfg === undefined) return;
  if (premature) {
    // The worker is exiting (reload, stop). A tick still delivering keeps the lock until it
    // has saved its cursors and releases it itself; otherwise a new shipper would read the
    // cursor files before them and send the same events again under other keys.
    if (!running) {
      saveDirty(d);
      releaseLock(d);
    }
    return;
  }
  if (running) return;
  const lock = holdLock(d);
  if (lock === undefined) return;
  if (lock === "new") {
    // Another worker shipped since this one last did: its cursor files are the truth.
    for (const st of sinks) {
      st.off = new LuaTable();
      st.pending = undefined;
      st.loaded = false;
    }
  }
  running = true;
  behind = false;
  sliceEnd = clock() + SLICE;
  const [ok, err] = pcall(() => {
    const segs = segments();
    const now = ngx.now();
    for (const st of sinks) shipTo(st, segs, now);
    // Idle, or handing the lock over: the cursor files say all that was delivered.
    if (!behind || ngx.worker.exiting()) saveDirty(d);
    const total = prune(segs);
    d.set("spool_bytes", total);
    for (const st of sinks) {
      let lag = 0;
      for (const seg of segs) lag = lag + math.max(0, seg.size - (st.off.get(seg.name) ?? 0));
      d.set("lag\t" + st.sink.id, lag);
    }
  });
  running = false;
  if (!ok) ngx.log(ngx.ERR, "audit: shipping failed: ", tostring(err));
  if (ngx.worker.exiting()) releaseLock(d);
  else if (behind && ok) ngx.timer.at(CONTINUE_S, tick);
}

/** init_worker: every worker runs the timer; the lock picks the one that ships. */
export function startShipping(this: void): void {
  if (cfg === undefined) return;
  makeDirs(cfg.spool_dir + "/cursors");
  observer = "fhir-edge/" + policy.name;
  ngx.timer.every(SHIP_EVERY, tick);
}
