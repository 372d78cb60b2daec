/**
 * The sinks: each takes whole chunks of spool lines (events, seals, checkpoints; a chunk ends
 * at a chain record) and says whether it has them. The shipper (audit/ship) retries a chunk
 * that failed, the same bytes with the same idempotency key, until it is taken.
 *
 * - file: appends the lines (or only the checkpoints) to `<dir>/audit.jsonl`, rotated to
 *   `audit-<ms>.jsonl` past `rotate_bytes`, keeping `keep` rotated files.
 * - http: POSTs the lines as NDJSON with `Idempotency-Key: <stream>:<first seq>-<last seq>`; a
 *   2xx takes them.
 * - fhir: POSTs a batch Bundle of AuditEvents (audit/balp), one PUT per event with an id
 *   derived from its stream, seal and position, so a retry replaces rather than duplicates; a
 *   2xx whose every entry succeeded takes them.
 */
import * as cjson from "cjson.safe";
import type { AuditFileSinkIR, AuditHttpSinkIR, AuditSinkIR } from "../generated/policy";
import { sha256, toHex } from "../auth/crypto";
import { closeFd, list, makeDirs, move, openAppend, remove, sizeOf, writeAll } from "./fs";
import { post } from "./httpc";
import { matches } from "../core/str";
import { toBundle, type AuditRecord } from "./balp";

const find = string.find;
const sub = string.sub;
const format = string.format;
const gmatch = string.gmatch;

export interface Chunk {
  readonly data: string;
  readonly stream: string;
  /** Seqs of the chunk's first and last seals; -1 when it holds none (only a checkpoint). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** The seq its last checkpoint signs; -1 without one. */
  readonly checkpointSeq: number;
}

interface FileState {
  fd: number;
  size: number;
}
const files = new LuaTable<string, FileState>();

function rotate(sink: AuditFileSinkIR, st: FileState): void {
  closeFd(st.fd);
  st.fd = -1;
  move(sink.dir + "/audit.jsonl", format("%s/audit-%d.jsonl", sink.dir, math.floor(ngx.now() * 1000)));
  const rotated: string[] = [];
  for (const name of list(sink.dir)) if (matches(name, "^audit%-%d+%.jsonl$")) rotated.push(name);
  table.sort(rotated);
  for (let i = 0; i < rotated.length - sink.keep; i++) remove(sink.dir + "/" + rotated[i]);
}

const CHECKPOINT = '{"t":"checkpoint",';

function checkpointsOf(data: string): string {
  const out: string[] = [];
  for (const [line] of gmatch(data, "([^\n]*)\n")) {
    if (line !== undefined && sub(line, 1, CHECKPOINT.length) === CHECKPOINT) out.push(line + "\n");
  }
  return table.concat(out);
}

function toFile(sink: AuditFileSinkIR, chunk: Chunk): boolean {
  const data = sink.records === "checkpoints" ? checkpointsOf(chunk.data) : chunk.data;
  if (data === "") return true;
  let st = files.get(sink.id);
  if (st === undefined) {
    st = { fd: -1, size: 0 };
    files.set(sink.id, st);
  }
  if (st.fd >= 0 && st.size > 0 && st.size + data.length > sink.rotate_bytes) rotate(sink, st);
  if (st.fd < 0) {
    makeDirs(sink.dir);
    st.fd = openAppend(sink.dir + "/audit.jsonl");
    if (st.fd < 0) return false;
    st.size = sizeOf(st.fd);
  }
  if (!writeAll(st.fd, data)) {
    closeFd(st.fd);
    st.fd = -1;
    return false;
  }
  st.size = st.size + data.length;
  return true;
}

/**
 * Names a chunk by the seals it holds, which no other chunk holds. A chunk of a checkpoint
 * alone (signed after its seal was shipped) is named by the seq it signs, apart from the seals'
 * names: two such chunks once shared `-1--1`, and a sink collapsed the second into the first.
 */
function idempotencyKey(chunk: Chunk): string {
  if (chunk.firstSeq < 0) return chunk.stream + ":checkpoint-" + format("%d", chunk.checkpointSeq);
  return chunk.stream + ":" + format("%d", chunk.firstSeq) + "-" + format("%d", chunk.lastSeq);
}

function toHttp(sink: AuditHttpSinkIR, chunk: Chunk): boolean {
  const [status] = post(sink, sink.path, "application/x-ndjson", chunk.data, "Idempotency-Key: " + idempotencyKey(chunk) + "\r\n");
  return status !== undefined && status >= 200 && status < 300;
}

/** A UUID-shaped id from a hash (real Medplum servers take only UUIDs as ids): the same event, the same id, on every retry. */
function uuidOf(name: string): string {
  const h = toHex(sha256(name));
  return sub(h, 1, 8) + "-" + sub(h, 9, 12) + "-" + sub(h, 13, 16) + "-" + sub(h, 17, 20) + "-" + sub(h, 21, 32);
}

const SEAL_SEQ = '^{"t":"seal","stream":"[^"]*","seq":(%d+),"kind":"(%a+)"';

/** Events of a chunk with their AuditEvent ids: stream, the seal that closes them, their place. */
function eventsOf(chunk: Chunk): LuaMultiReturn<[AuditRecord[], string[]]> {
  const events: AuditRecord[] = [];
  const ids: string[] = [];
  let pending: AuditRecord[] = [];
  for (const [line] of gmatch(chunk.data, "([^\n]*)\n")) {
    if (line === undefined || line === "") continue;
    if (sub(line, 1, 5) !== '{"t":') {
      const [ev] = cjson.decode(line);
      if (type(ev) === "table") pending.push(ev as AuditRecord);
      continue;
    }
    const [, , seq] = find(line, SEAL_SEQ);
    if (seq === undefined) continue;
    for (let i = 0; i < pending.length; i++) {
      events.push(pending[i]!);
      ids.push(uuidOf(chunk.stream + ":" + (seq as string) + ":" + format("%d", i)));
    }
    pending = [];
  }
  return $multi(events, ids);
}

function toFhir(sink: AuditHttpSinkIR, chunk: Chunk, observer: string): boolean {
  const [events, ids] = eventsOf(chunk);
  if (events.length === 0) return true;
  const [body] = cjson.encode(toBundle(events, ids, observer));
  if (body === undefined) return false;
  const [status, resp] = post(sink, sink.path, "application/fhir+json", body, "Accept: application/fhir+json\r\n");
  if (status === undefined || status < 200 || status >= 300) return false;
  const [doc] = cjson.decode(resp as string);
  if (type(doc) !== "table") return false;
  const entries = (doc as { entry?: { response?: { status?: string } }[] }).entry;
  if (entries === undefined || entries.length !== events.length) return false;
  for (const e of entries) {
    const s = e.response?.status;
    if (s === undefined || sub(s, 1, 1) !== "2") return false;
  }
  return true;
}

export function deliver(sink: AuditSinkIR, chunk: Chunk, observer: string): boolean {
  if (sink.kind === "file") return toFile(sink, chunk);
  if (sink.kind === "http") return toHttp(sink, chunk);
  return toFhir(sink, chunk, observer);
}
