/**
 * `fhir-edge verify-audit`: checks an audit spool or an export of it (lua-plugins/audit/README.md,
 * "The spool format") without trusting anything in it. Per stream it recomputes every seal's
 * hash from the event lines before it, follows the `prev` links from the open seal to the close
 * seal, and checks every checkpoint against the seal it signs and, with the key, its MAC. Each
 * finding names the file and line where it shows.
 *
 * A source is a spool directory (`<stream>.<segment>.jsonl`, one stream per file) or an export:
 * a file sink's directory (`audit-<ms>.jsonl` rotations, then `audit.jsonl`) or one file, where
 * the batches of several streams interleave and each batch is contiguous. A spool prunes the
 * segments every sink has, so a spool stream may start past seq 0; in an export, and for a head
 * a gap seal names as dropped, a missing start is a finding.
 */
import { createHash, createHmac, verify as verifySignature, type KeyObject } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { pidAlive } from "../process.ts";

export type FindingKind =
  | "malformed"
  | "modified"
  | "missing"
  | "reordered"
  | "duplicate"
  | "truncated"
  | "forged-checkpoint"
  | "gap"
  | "unclosed";

export interface Position {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
}

export interface Finding extends Position {
  readonly kind: FindingKind;
  readonly stream?: string;
  readonly seq?: number;
  readonly message: string;
}

export interface SourceReport {
  readonly source: string;
  readonly kind: "spool" | "export";
  readonly streams: number;
  readonly seals: number;
  readonly events: number;
  /** Checkpoints matched against a seal of this source. */
  readonly checkpoints: number;
}

export interface VerifyReport {
  readonly sources: readonly SourceReport[];
  readonly findings: readonly Finding[];
  /** What was not checked, or holds but is worth knowing (an open stream, a pruned head). */
  readonly notes: readonly string[];
  /** Checkpoint MACs and signatures checked against the key or the public key (0 without either). */
  readonly macsChecked: number;
}

export interface VerifyOptions {
  /** Spool directories, export directories or files. */
  readonly sources: readonly string[];
  /** More checkpoints: a checkpoint sink's directory or file. Their streams need not be in every source. */
  readonly checkpoints?: readonly string[];
  /** The audit key's bytes (the policy's keyFile); without it, HMAC checkpoints are not checked. */
  readonly key?: Buffer;
  /** The Ed25519 public key of `ed25519KeyFile`; without it, Ed25519 checkpoints are not checked. */
  readonly publicKey?: KeyObject;
  /** Whether a worker pid still runs (a stream without a close seal is then open, not cut off). */
  readonly isAlive?: (pid: number) => boolean;
}

const MAC_CONTEXT = "fhir-edge-audit-checkpoint/1\n";
const SEGMENT_FILE = /^(w\d+-\d+-\d+)\.(\d{6})\.jsonl$/;
const ROTATED_FILE = /^audit-(\d+)\.jsonl$/;
const STREAM_ID = /^w\d+-\d+-(\d+)$/;
const HEX64 = /^[0-9a-f]{64}$/;
const KINDS = new Set(["open", "batch", "gap", "close"]);

interface Seal extends Position {
  readonly stream: string;
  readonly seq: number;
  readonly kind: "open" | "batch" | "gap" | "close";
  readonly n: number;
  readonly dropped: number;
  readonly hash: string;
  readonly prev: string;
  readonly reason: string | undefined;
  /** The segment a spool-dropped gap names. */
  readonly segment: string | undefined;
  readonly carried: number;
  /** The hash recomputed from the seal's fields and the event lines before it. */
  readonly computed: string;
  /** The event lines it closes: where they start, and how many there were. */
  readonly firstLine: number;
  readonly lines: number;
}

interface Checkpoint extends Position {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
  readonly ts: number;
  readonly keyId: string;
  readonly alg: string;
  /** The MAC (HMAC-SHA256) or the signature (Ed25519), hex. */
  readonly mac: string;
}

interface Parsed {
  readonly seals: Seal[];
  readonly checkpoints: Checkpoint[];
  events: number;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function sealHash(doc: { prev: string; stream: string; seq: number; kind: string; ts: number; n: number; dropped: number }, events: readonly string[]): string {
  const h = createHash("sha256").update(`${doc.prev}\n${doc.stream}\n${doc.seq}\n${doc.kind}\n${doc.ts}\n${doc.n}\n${doc.dropped}\n`);
  for (const e of events) h.update(e + "\n");
  return h.digest("hex");
}

function checkpointText(c: { stream: string; seq: number; hash: string; ts: number }): string {
  return `${MAC_CONTEXT}${c.stream}\n${c.seq}\n${c.hash}\n${c.ts}`;
}

export function checkpointMac(key: Buffer, c: { stream: string; seq: number; hash: string; ts: number }): string {
  return createHmac("sha256", key).update(checkpointText(c)).digest("hex");
}

const HEX128 = /^[0-9a-f]{128}$/;

function signedBy(publicKey: KeyObject, c: Checkpoint): boolean {
  return HEX128.test(c.mac) && verifySignature(null, Buffer.from(checkpointText(c)), publicKey, Buffer.from(c.mac, "hex"));
}

/** The files of a source in the order they were written; whether it is a spool. */
function sourceFiles(p: string): { files: string[]; spool: boolean } {
  if (!statSync(p).isDirectory()) return { files: [p], spool: SEGMENT_FILE.test(path.basename(p)) };
  const names = readdirSync(p).filter((f) => f.endsWith(".jsonl") && statSync(path.join(p, f)).isFile());
  const segments = names.filter((f) => SEGMENT_FILE.test(f)).sort();
  if (segments.length > 0 || existsSync(path.join(p, "cursors"))) return { files: segments.map((f) => path.join(p, f)), spool: true };
  const rank = (f: string): number => {
    const m = ROTATED_FILE.exec(f);
    return m !== null ? Number(m[1]) : f === "audit.jsonl" ? Number.MAX_SAFE_INTEGER : -1;
  };
  const ordered = names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return { files: ordered.map((f) => path.join(p, f)), spool: false };
}

class Collector {
  readonly findings: Finding[] = [];
  readonly notes: string[] = [];
  add(kind: FindingKind, at: Position, message: string, stream?: string, seq?: number): void {
    this.findings.push({ kind, file: at.file, line: at.line, message, ...(stream !== undefined ? { stream } : {}), ...(seq !== undefined ? { seq } : {}) });
  }
}

/**
 * Reads one file's records. Event lines belong to the seal that follows them; a partial last
 * line (no newline) is a truncation, unless `live` says its writer may still be writing it.
 */
function parseFile(file: string, out: Parsed, c: Collector, live: (stream: string) => boolean, fileStream: string | undefined): void {
  const text = readFileSync(file, "utf8");
  const lines = text.split("\n");
  const partial = lines.pop() ?? "";
  let pending: string[] = [];
  let pendingFrom = 0;
  const orphan = (why: string): void => {
    if (pending.length > 0) c.add("missing", { file, line: pendingFrom }, `${pending.length} event line(s) at lines ${pendingFrom}-${pendingFrom + pending.length - 1} are closed by no seal (${why})`);
    pending = [];
  };
  lines.forEach((raw, i) => {
    const at = { file, line: i + 1 };
    if (raw === "") return c.add("malformed", at, "empty line");
    let doc: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(raw);
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
      doc = v as Record<string, unknown>;
    } catch {
      return c.add("malformed", at, "not a JSON object");
    }
    const t = doc["t"];
    if (t === undefined) {
      if (pending.length === 0) pendingFrom = at.line;
      pending.push(raw);
      out.events += 1;
      return;
    }
    const stream = doc["stream"];
    if (typeof stream !== "string" || !STREAM_ID.test(stream)) return c.add("malformed", at, `a ${String(t)} record without a valid stream id`);
    if (fileStream !== undefined && stream !== fileStream) c.add("malformed", at, `a record of stream ${stream} in a segment of stream ${fileStream}`, stream);
    if (t === "checkpoint") {
      orphan("a checkpoint follows them");
      const { seq, hash, ts, key_id, alg } = doc;
      const mac = alg === "Ed25519" ? doc["sig"] : doc["mac"];
      if (!isInt(seq) || typeof hash !== "string" || !HEX64.test(hash) || !isInt(ts) || typeof key_id !== "string" || typeof alg !== "string" || typeof mac !== "string") {
        return c.add("malformed", at, "a checkpoint without seq, hash, ts, key_id, alg and mac (or sig)", stream);
      }
      out.checkpoints.push({ ...at, stream, seq, hash, ts, keyId: key_id, alg, mac });
      return;
    }
    if (t !== "seal") return c.add("malformed", at, `unknown record type ${JSON.stringify(t)}`, stream);
    const { seq, kind, ts, n, dropped, prev, hash } = doc;
    if (!isInt(seq) || typeof kind !== "string" || !KINDS.has(kind) || !isInt(ts) || !isInt(n) || !isInt(dropped) || typeof prev !== "string" || typeof hash !== "string") {
      orphan("the seal after them is malformed");
      return c.add("malformed", at, "a seal without seq, kind, ts, n, dropped, prev and hash", stream);
    }
    // A seal closes the n lines right before it; any before those were left by a deleted seal or added.
    if (pending.length > n) {
      const extra = pending.length - n;
      c.add("missing", { file, line: pendingFrom }, `${extra} event line(s) at lines ${pendingFrom}-${pendingFrom + extra - 1} are closed by no seal (a seal before them was removed, or they were added)`, stream);
      pending = pending.slice(extra);
      pendingFrom += extra;
    }
    const events = pending;
    const firstLine = events.length > 0 ? pendingFrom : at.line;
    pending = [];
    const r = doc["reason"];
    const g = doc["segment"];
    const cr = doc["carried"];
    out.seals.push({
      ...at,
      stream,
      seq,
      kind: kind as Seal["kind"],
      n,
      dropped,
      hash,
      prev,
      reason: typeof r === "string" ? r : undefined,
      segment: typeof g === "string" ? g : undefined,
      carried: isInt(cr) ? cr : 0,
      computed: sealHash({ prev, stream, seq, kind, ts, n, dropped }, events),
      firstLine,
      lines: events.length,
    });
  });
  const end = { file, line: lines.length + 1 };
  if (partial !== "") {
    if (fileStream !== undefined && live(fileStream)) c.notes.push(`${file}:${end.line}: a line being written by a running worker (not checked)`);
    else c.add("truncated", end, `the file ends inside a line (${partial.length} bytes without a newline)`, fileStream);
  }
  if (pending.length > 0) {
    if (fileStream !== undefined && live(fileStream)) c.notes.push(`${file}:${pendingFrom}: ${pending.length} event line(s) of a running worker not sealed yet`);
    else c.add("truncated", { file, line: pendingFrom }, `${pending.length} event line(s) at the end of the file are closed by no seal`, fileStream);
  }
}

const where = (p: Position): string => `${p.file}:${p.line}`;

/** Checks one stream's seals, in the order the source holds them. Returns seq -> seal. */
function checkStream(stream: string, seals: readonly Seal[], spool: boolean, droppedHeads: ReadonlySet<string>, carriedSomewhere: boolean, alive: boolean, c: Collector): Map<number, Seal> {
  // (Whether a stream without a close seal was cut off is judged once every source is read.)
  const bySeq = new Map<number, Seal>();
  let highest = -1;
  for (const s of seals) {
    const seen = bySeq.get(s.seq);
    if (seen !== undefined) {
      if (seen.hash === s.hash && seen.computed === s.computed && s.computed === s.hash) c.add("duplicate", s, `seal ${s.seq} and its batch repeat ${where(seen)} (an at-least-once sink may repeat a batch after a crash)`, stream, s.seq);
      else c.add("modified", s, `a second, different seal ${s.seq} (the first is at ${where(seen)})`, stream, s.seq);
      continue;
    }
    bySeq.set(s.seq, s);
    if (s.seq < highest) c.add("reordered", s, `seal ${s.seq} comes after seal ${highest}`, stream, s.seq);
    highest = Math.max(highest, s.seq);
    if (s.lines !== s.n) c.add("missing", s, `seal ${s.seq} closes ${s.n} event line(s) but ${s.lines} precede it${s.lines > 0 ? ` (lines ${s.firstLine}-${s.line - 1})` : ""}: event lines were removed`, stream, s.seq);
    else if (s.computed !== s.hash) {
      const batch = s.n > 0 ? `its batch (lines ${s.firstLine}-${s.line - 1}) or the seal` : "the seal";
      c.add("modified", s, `seal ${s.seq}'s hash does not match ${batch}: a field was changed`, stream, s.seq);
    }
    if ((s.kind === "open") !== (s.seq === 0)) c.add("malformed", s, s.kind === "open" ? `an open seal at seq ${s.seq}` : `seq 0 is a ${s.kind} seal, not open`, stream, s.seq);
    if (s.kind === "batch" && s.n === 0) c.add("malformed", s, "a batch seal closing no events", stream, s.seq);
    if (s.kind !== "batch" && s.n !== 0) c.add("malformed", s, `a ${s.kind} seal closing ${s.n} events`, stream, s.seq);
    if (s.kind === "gap") {
      const what = s.segment !== undefined ? ` (segment ${s.segment} removed before every sink had it)` : "";
      c.add("gap", s, `${s.dropped} event(s) lost: ${s.reason ?? "no reason given"}${what}${s.carried > 0 ? `, ${s.carried} of them recorded by gap seals in removed segments` : ""}`, stream, s.seq);
    }
  }
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  const first = bySeq.get(seqs[0]!)!;
  if (first.seq > 0) {
    const dropped = droppedHeads.has(stream);
    if (dropped || (!spool && carriedSomewhere)) {
      // The gap seal that removed it is the finding.
    } else if (spool) c.notes.push(`stream ${stream} starts at seal ${first.seq} (${where(first)}): its earlier segments were shipped to every sink and pruned`);
    else c.add("missing", first, `stream ${stream} starts at seal ${first.seq}: seals 0-${first.seq - 1} are not here (a rotated file removed, or lines deleted)`, stream, first.seq);
  } else if (first.prev !== "") c.add("modified", first, "the open seal has a prev", stream, 0);
  for (let i = 1; i < seqs.length; i++) {
    const s = bySeq.get(seqs[i]!)!;
    const before = bySeq.get(seqs[i - 1]!)!;
    if (s.seq !== before.seq + 1) {
      c.add("missing", s, `seals ${before.seq + 1}${s.seq - 1 > before.seq + 1 ? `-${s.seq - 1}` : ""} of stream ${stream} are missing (between ${where(before)} and here)`, stream, before.seq + 1);
      continue;
    }
    if (s.prev !== before.hash) c.add("modified", s, `seal ${s.seq}'s prev is not seal ${before.seq}'s hash (${where(before)}): the chain was changed`, stream, s.seq);
  }
  const last = bySeq.get(seqs[seqs.length - 1]!)!;
  const close = seals.find((s) => s.kind === "close");
  if (close !== undefined && close.seq !== last.seq) c.add("malformed", bySeq.get(close.seq + 1) ?? last, `seals after the close seal ${close.seq}`, stream, close.seq + 1);
  if (last.kind !== "close" && alive) c.notes.push(`stream ${stream} is open: its worker runs (last seal ${last.seq}, ${where(last)})`);
  return bySeq;
}

export function verifyAudit(opts: VerifyOptions): VerifyReport {
  const c = new Collector();
  const isAlive = opts.isAlive ?? pidAlive;
  // A stream's id ends in its worker's pid (the open seal's "pid" says the same).
  const aliveByStream = new Map<string, boolean>();
  const streamAlive = (stream: string): boolean => {
    let a = aliveByStream.get(stream);
    if (a === undefined) {
      const m = STREAM_ID.exec(stream);
      a = m !== null && isAlive(Number(m[1]));
      aliveByStream.set(stream, a);
    }
    return a;
  };
  const extraCheckpoints: Checkpoint[] = [];
  for (const p of opts.checkpoints ?? []) {
    const parsed: Parsed = { seals: [], checkpoints: [], events: 0 };
    for (const f of sourceFiles(p).files) parseFile(f, parsed, c, () => false, undefined);
    if (parsed.seals.length > 0 || parsed.events > 0) c.notes.push(`${p}: holds seals or events besides checkpoints; only its checkpoints are used`);
    extraCheckpoints.push(...parsed.checkpoints);
  }
  // Each checkpoint's MAC is checked once, and a forged one is then left out of every source.
  const macs = new Map<Checkpoint, boolean>();
  // An algorithm the gateway does not write is a forgery: accepting it unchecked would let
  // anyone sign with "none".
  const unchecked = new Set<string>();
  const checkMac = (k: Checkpoint): boolean => {
    let ok = macs.get(k);
    if (ok !== undefined) return ok;
    let why: string;
    if (k.alg === "HMAC-SHA256") {
      if (opts.key === undefined) {
        unchecked.add(k.alg);
        return true;
      }
      ok = checkpointMac(opts.key, k) === k.mac;
      why = "its MAC is not the key's";
    } else if (k.alg === "Ed25519") {
      if (opts.publicKey === undefined) {
        unchecked.add(k.alg);
        return true;
      }
      ok = signedBy(opts.publicKey, k);
      why = "its signature is not the public key's";
    } else {
      ok = false;
      why = `its algorithm ${JSON.stringify(k.alg)} is not one the gateway writes`;
    }
    macs.set(k, ok);
    if (!ok) c.add("forged-checkpoint", k, `checkpoint of seal ${k.seq} of stream ${k.stream}: ${why} (key_id ${k.keyId})`, k.stream, k.seq);
    return ok;
  };
  const sources: SourceReport[] = [];
  const ended: { source: string; stream: string; last: Seal; alive: boolean }[] = [];
  const allChains: Map<string, Map<number, Seal>>[] = [];
  const ahead: { source: string; k: Checkpoint; last: Seal }[] = [];
  for (const p of opts.sources) {
    const { files, spool } = sourceFiles(p);
    const parsed: Parsed = { seals: [], checkpoints: [], events: 0 };
    for (const f of files) parseFile(f, parsed, c, streamAlive, spool ? SEGMENT_FILE.exec(path.basename(f))?.[1] : undefined);
    const byStream = new Map<string, Seal[]>();
    for (const s of parsed.seals) byStream.set(s.stream, [...(byStream.get(s.stream) ?? []), s]);
    const droppedHeads = new Set<string>();
    let carried = false;
    for (const s of parsed.seals) {
      if (s.kind !== "gap") continue;
      const m = s.segment === undefined ? null : SEGMENT_FILE.exec(s.segment);
      if (m !== null) droppedHeads.add(m[1]!);
      if (s.carried > 0) carried = true;
    }
    const chains = new Map<string, Map<number, Seal>>();
    for (const [stream, seals] of byStream) {
      const alive = streamAlive(stream);
      const chain = checkStream(stream, seals, spool, droppedHeads, carried, alive, c);
      chains.set(stream, chain);
      const last = chain.get(Math.max(...chain.keys()))!;
      if (last.kind !== "close") ended.push({ source: p, stream, last, alive });
    }
    allChains.push(chains);
    let matched = 0;
    // The same checkpoint in the source and in a checkpoint sink is checked once.
    const unique = new Map<string, { k: Checkpoint; own: boolean }>();
    const id = (k: Checkpoint): string => `${k.stream}\t${k.seq}\t${k.hash}\t${k.ts}\t${k.keyId}\t${k.mac}`;
    for (const k of parsed.checkpoints) unique.set(id(k), { k, own: true });
    for (const k of extraCheckpoints) if (!unique.has(id(k))) unique.set(id(k), { k, own: false });
    for (const { k, own } of unique.values()) {
      if (!checkMac(k)) continue;
      const chain = chains.get(k.stream);
      if (chain === undefined) {
        if (own) c.add("missing", k, `a checkpoint of stream ${k.stream}, which has no seals here`, k.stream, k.seq);
        continue;
      }
      const s = chain.get(k.seq);
      if (s !== undefined) {
        matched += 1;
        if (s.hash !== k.hash) c.add("modified", s, `seal ${k.seq}'s hash differs from the one its checkpoint signs (${where(k)}): the chain was recomputed`, k.stream, k.seq);
        continue;
      }
      const seqs = [...chain.keys()];
      const lastSeq = Math.max(...seqs);
      if (k.seq < Math.min(...seqs)) continue; // a pruned or dropped head, judged above
      if (k.seq > lastSeq) ahead.push({ source: p, k, last: chain.get(lastSeq)! });
      // A checkpoint inside a hole: the hole is the finding.
    }
    sources.push({ source: p, kind: spool ? "spool" : "export", streams: byStream.size, seals: parsed.seals.length, events: parsed.events, checkpoints: matched });
  }
  // A stream that ends without a close seal, and whose worker is gone, was cut off, unless
  // another source (the spool beside an export) holds its rest: that is not shipped there yet.
  for (const e of ended) {
    if (e.alive) continue;
    const ahead = allChains.map((ch) => ch.get(e.stream)).find((ch) => ch !== undefined && ch.get(e.last.seq)?.hash === e.last.hash && Math.max(...ch.keys()) > e.last.seq);
    if (ahead !== undefined) c.notes.push(`${e.source}: stream ${e.stream} ends at seal ${e.last.seq}; another source has it up to seal ${Math.max(...ahead.keys())} (not shipped here yet)`);
    else c.add("unclosed", e.last, `stream ${e.stream} ends at seal ${e.last.seq} without a close seal and its worker is gone: what it had not flushed was lost (or no sink has had the rest yet)`, e.stream, e.last.seq);
  }
  // A checkpoint past a stream's last seal: the tail was removed, unless the worker still runs
  // (the checkpoint sink got it first) or another source holds that seal with the signed hash.
  for (const { source, k, last } of ahead) {
    const elsewhere = allChains.map((ch) => ch.get(k.stream)?.get(k.seq)).find((s) => s !== undefined);
    if (elsewhere !== undefined && elsewhere.hash === k.hash) c.notes.push(`${where(k)}: seal ${k.seq} of stream ${k.stream} is not in ${source} yet (another source has it)`);
    else if (elsewhere === undefined && last.kind !== "close" && streamAlive(k.stream)) c.notes.push(`${where(k)}: a checkpoint of seal ${k.seq} of the running stream ${k.stream}, ahead of ${source} (not shipped there yet)`);
    else if (elsewhere === undefined) c.add("truncated", last, `stream ${k.stream} ends at seal ${last.seq}, but ${where(k)} signs seal ${k.seq}: its tail was removed`, k.stream, last.seq);
    // A seal elsewhere with another hash is reported where that source is checked.
  }
  if (unchecked.has("HMAC-SHA256")) c.notes.push("HMAC-SHA256 checkpoint MACs were not checked: no key (--key FILE)");
  if (unchecked.has("Ed25519")) c.notes.push("Ed25519 checkpoint signatures were not checked: no public key (--public-key FILE)");
  return { sources, findings: c.findings, notes: c.notes, macsChecked: macs.size };
}

export function formatFinding(f: Finding): string {
  return `${f.file}:${f.line}: ${f.kind}: ${f.message}`;
}
