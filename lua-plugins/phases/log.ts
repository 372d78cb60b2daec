/**
 * log_by_lua: metrics, and the request's audit event (appended to the worker's buffer; no I/O
 * here, audit/writer). Labels come from $fe_labels (set in access, and it survives the
 * internal redirect to the error page, unlike ngx.ctx); requests refused before classification
 * count as tenant/interaction/type "none". On a cached route, also what the cache did, and the
 * miss budget's spending when the cache went to the upstream (cache/README.md).
 */
import * as gw from "../core/gateway";
import { countCache, record } from "../metrics/metrics";
import { spendMiss } from "../cache/miss";
import { auditing, eventLine } from "../audit/event";
import { append } from "../audit/writer";

const ngxVar = ngx.var;
const NONE = "none\tnone\tnone";
const tonumber_ = tonumber;

/**
 * What the cache did, as X-Cache says it (`$fe_x_cache`, the conf's map, already evaluated
 * for the header), and the miss budget's spending when the cache went to the upstream: a MISS
 * or EXPIRED entry, or a hit-for-pass request (`P`) sent around it.
 */
function logCache(labels: string, mark: string): void {
  const status = ngxVar.fe_x_cache;
  if (status === undefined || status === "") return;
  const served = status === "HIT" || status === "STALE";
  countCache(labels, status, served ? tonumber_(ngxVar.body_bytes_sent ?? "0") ?? 0 : 0);
  if (status === "MISS" || status === "EXPIRED" || mark === "P") {
    const miss = ngxVar.fe_cache_miss;
    if (miss !== undefined && miss !== "") spendMiss(miss);
  }
}

export function run(this: void): void {
  const raw = ngxVar.fe_labels;
  const labels = raw === undefined || raw === "" ? NONE : raw;
  // ngx.now() is the cached event-loop time, like $request_time, without formatting and
  // re-parsing a string.
  const seconds = ngx.now() - ngx.req.start_time();
  const status = ngx.status;
  record(labels, status, seconds, gw.maxSeries);
  if (gw.caching) {
    const mark = ngxVar.fe_cache;
    if (mark !== undefined && mark !== "") logCache(labels, mark);
  }
  if (auditing) {
    const line = eventLine(status, seconds);
    if (line !== undefined) append(line);
  }
}
