/**
 * log_by_lua: metrics. Labels come from $fe_labels (set in access, and it survives the
 * internal redirect to the error page, unlike ngx.ctx); requests refused before classification
 * count as tenant/interaction/type "none". On a cached route, also what the cache did, and the
 * miss budget's spending when the cache went to the upstream (cache/README.md).
 */
import * as gw from "../core/gateway";
import { countCache, record } from "../metrics/metrics";
import { spendMiss } from "../cache/miss";

const ngxVar = ngx.var;
const NONE = "none\tnone\tnone";
const tonumber_ = tonumber;
const sub = string.sub;

/** $upstream_cache_status as X-Cache says it (the conf's fe_x_cache map, for the log phase). */
const STATUS: Record<string, string> = { HIT: "HIT", MISS: "MISS", EXPIRED: "EXPIRED", STALE: "STALE", UPDATING: "STALE", REVALIDATED: "HIT", BYPASS: "BYPASS" };
/** What sent the request to the upstream, so the miss budget pays. */
const WENT_UPSTREAM: Record<string, boolean> = { MISS: true, EXPIRED: true, BYPASS: true };

function cacheStatus(mark: string): string {
  if (mark === "B" || mark === "P") return "BYPASS";
  if (mark === "C") return STATUS[ngxVar.upstream_cache_status ?? "MISS"] ?? "MISS";
  return STATUS[sub(mark, 2)] ?? "MISS";
}

function logCache(labels: string, mark: string): void {
  const status = cacheStatus(mark);
  const served = status === "HIT" || status === "STALE";
  countCache(labels, status, served ? tonumber_(ngxVar.body_bytes_sent ?? "0") ?? 0 : 0);
  // A hit-for-pass request went upstream around the cache: it pays like a miss.
  if (mark === "P" || (WENT_UPSTREAM[status] === true && mark !== "B")) {
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
  record(labels, ngx.status, seconds, gw.maxSeries);
  if (!gw.caching) return;
  const mark = ngxVar.fe_cache;
  if (mark !== undefined && mark !== "") logCache(labels, mark);
}
