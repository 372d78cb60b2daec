/**
 * Request counters and a latency histogram in the `fe_metrics` shared dict, rendered in the
 * Prometheus text format by the admin listener.
 *
 * Cardinality is bounded: a label set is a "series", and at most `max_series` request series
 * exist. A new label set past the cap is counted under resource_type="other" (and, if that set
 * is new and the cap is still reached, under tenant/interaction "other" as well), and the
 * overflow itself is counted in fe_metrics_series_overflow_total. At dict exhaustion incr fails;
 * that is counted in fe_metrics_dict_full_total (in the worker, as the dict cannot hold it).
 */
const concat = table.concat;

export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const find = string.find;
const sub = string.sub;
const SEP = "\t";
const REQ = "r" + SEP;
const LAT = "l" + SEP;
const SERIES = "_series";
const OVERFLOW = "_overflow";

let dictFull = 0;

function dict(): SharedDict | undefined {
  return ngx.shared.fe_metrics;
}

/** Count `key` up by `by`, creating it when the series cap allows; returns false past the cap. */
function bump(d: SharedDict, key: string, by: number, maxSeries: number): boolean {
  const [v] = d.incr(key, by);
  if (v !== undefined) return true;
  const [n] = d.incr(SERIES, 1, 0);
  if (n === undefined) {
    dictFull = dictFull + 1;
    return true;
  }
  if (n > maxSeries) {
    d.incr(SERIES, -1);
    return false;
  }
  const [ok] = d.incr(key, by, 0);
  if (ok === undefined) dictFull = dictFull + 1;
  return true;
}

/** Unrolled: a loop here would end the log phase's root trace (see bench trace check). */
export function bucketIndex(s: number): number {
  if (s <= 0.025) {
    if (s <= 0.0025) return s <= 0.001 ? 0 : 1;
    return s <= 0.005 ? 2 : s <= 0.01 ? 3 : 4;
  }
  if (s <= 0.5) return s <= 0.05 ? 5 : s <= 0.1 ? 6 : s <= 0.25 ? 7 : 8;
  return s <= 1 ? 9 : s <= 2.5 ? 10 : s <= 5 ? 11 : s <= 10 ? 12 : 13;
}

function statusClass(status: number): string {
  return status >= 500 ? "5xx" : status >= 400 ? "4xx" : status >= 300 ? "3xx" : status >= 200 ? "2xx" : "1xx";
}

/** The dict keys of one label set, built once: the log phase runs for every request. */
interface SeriesKeys {
  readonly tenant: string;
  /** The request counter's key by status class ("2xx"...). */
  readonly byClass: Record<string, string>;
  /** Latency bucket keys of the tenant, by bucketIndex (0-based). */
  readonly lat: LuaTable<number, string>;
  readonly sum: string;
}

/**
 * Label sets come from policy ids and enums, so they are bounded, but by a large product
 * (tenants x interactions x types): past SERIES_KEYS_MAX the keys are built per request.
 */
const SERIES_KEYS_MAX = 4096;
const seriesKeys = new LuaTable<string, SeriesKeys>();
let seriesKeyCount = 0;
const latKeys = new LuaTable<string, LuaTable<number, string>>();

function latencyKeys(tenant: string): LuaTable<number, string> {
  let t = latKeys.get(tenant);
  if (t === undefined) {
    t = new LuaTable();
    for (let i = 0; i <= LATENCY_BUCKETS.length; i++) t.set(i, LAT + tenant + SEP + tostring(i));
    latKeys.set(tenant, t);
  }
  return t;
}

function keysFor(labels: string): SeriesKeys {
  const hit = seriesKeys.get(labels);
  if (hit !== undefined) return hit;
  const [tab] = find(labels, SEP, 1, true);
  const tenant = tab === undefined ? labels : sub(labels, 1, tab - 1);
  const r = REQ + labels + SEP;
  const byClass = { "1xx": r + "1xx", "2xx": r + "2xx", "3xx": r + "3xx", "4xx": r + "4xx", "5xx": r + "5xx" };
  const k: SeriesKeys = { tenant, byClass, lat: latencyKeys(tenant), sum: LAT + tenant + SEP + "sum" };
  if (seriesKeyCount < SERIES_KEYS_MAX) {
    seriesKeys.set(labels, k);
    seriesKeyCount = seriesKeyCount + 1;
  }
  return k;
}

/**
 * Log phase: one request. `labels` is "tenant\tinteraction\tresource_type" as the access phase
 * wrote it (bounded values: policy ids and enums).
 */
export function record(labels: string, status: number, seconds: number, maxSeries: number): void {
  const d = dict();
  if (d === undefined) return;
  const k = keysFor(labels);
  const klass = statusClass(status);
  if (!bump(d, k.byClass[klass]!, 1, maxSeries)) overflow(d, labels, k.tenant, klass, maxSeries);
  // The histogram is per tenant only: tenants and buckets are bounded by the policy, so these
  // keys stay outside the series cap.
  const [b] = d.incr(k.lat.get(bucketIndex(seconds))!, 1, 0);
  const [s] = d.incr(k.sum, seconds, 0);
  if (b === undefined || s === undefined) dictFull = dictFull + 1;
}

/** Past the series cap: counted under resource_type "other", then under a fixed key per status class. */
function overflow(d: SharedDict, labels: string, tenant: string, klass: string, maxSeries: number): void {
  d.incr(OVERFLOW, 1, 0);
  const [t2] = find(labels, SEP, tenant.length + 2, true);
  const prefix = t2 === undefined ? tenant + SEP + "other" + SEP : sub(labels, 1, t2);
  if (!bump(d, REQ + prefix + "other" + SEP + klass, 1, maxSeries)) {
    const [v] = d.incr(REQ + "other" + SEP + "other" + SEP + "other" + SEP + klass, 1, 0);
    if (v === undefined) dictFull = dictFull + 1;
  }
}

function count(key: string, by: number): void {
  const d = dict();
  if (d === undefined) return;
  const [v] = d.incr(key, by, 0);
  if (v === undefined) dictFull = dictFull + 1;
}

/** Counter keys by tenant, path and outcome, built once: the cache-hit path runs per request. */
const authKeys = new LuaTable<string, LuaTable<string, LuaTable<string, string>>>();

/**
 * Identity outcomes. `via` is jwt, introspection or cache (so the token cache hit ratio is
 * the cache share of ok); `outcome` is ok or the precise reason (a fixed code). Tenants come
 * from the policy, so the label set is bounded.
 */
export function countAuth(tenant: string, via: string, outcome: string): void {
  let byVia = authKeys.get(tenant);
  if (byVia === undefined) {
    byVia = new LuaTable();
    authKeys.set(tenant, byVia);
  }
  let byOutcome = byVia.get(via);
  if (byOutcome === undefined) {
    byOutcome = new LuaTable();
    byVia.set(via, byOutcome);
  }
  let key = byOutcome.get(outcome);
  if (key === undefined) {
    key = "a" + SEP + tenant + SEP + via + SEP + outcome;
    byOutcome.set(outcome, key);
  }
  count(key, 1);
}

/**
 * A SMART scope denial, enforced or (shadow mode) only recorded. `missing` is the permission
 * that was missing (`patient/Observation.s`) or the rule's fixed code: bounded by the R4 types.
 */
export function countScopeDenial(tenant: string, resourceType: string, missing: string, shadow: boolean): void {
  count("s" + SEP + tenant + SEP + resourceType + SEP + missing + SEP + (shadow ? "shadow" : "enforced"), 1);
}

/**
 * Break-glass requests by tenant and outcome: the reason code when allowed (a policy-listed
 * code), else why it was refused (not_enabled, bad_reason, not_eligible).
 */
export function countBreakGlass(tenant: string, outcome: string): void {
  count("bg" + SEP + tenant + SEP + outcome, 1);
}

/** Scopes that did not parse (counted once per token, when its scopes are parsed). */
export function countScopesIgnored(n: number): void {
  count("x" + SEP + "ignored", n);
}

/**
 * A compartment search verdict built afresh (its parameters parsed and checked); a repeated
 * search is answered from the token's memo and counts nothing. Memoizable or not, by type.
 */
export function countSearchVerdict(memoizable: boolean): void {
  count(memoizable ? VERDICT_MEMO_MISS : VERDICT_UNMEMOIZED, 1);
}
const VERDICT_MEMO_MISS = "v" + SEP + "memo_miss";
const VERDICT_UNMEMOIZED = "v" + SEP + "not_memoizable";

/** JWKS downloads per issuer: ok or failed. */
export function countJwks(issuer: string, ok: boolean): void {
  count("j" + SEP + issuer + SEP + (ok ? "ok" : "failed"), 1);
}

/** One introspection call's latency, per issuer. */
export function observeIntrospection(issuer: string, seconds: number): void {
  const h = "i" + SEP + issuer + SEP;
  count(h + bucketIndex(seconds), 1);
  count(h + "sum", seconds);
}

/**
 * Counters and gauges of the request path that would cost a dict write per request (the rate
 * limiter's decisions): kept in the worker and flushed to the dict by a timer (phases/init)
 * every FLUSH_EVERY seconds, so they lag by at most that. Keys are bounded by the policy
 * (tenants x budgets x outcomes).
 */
export const FLUSH_EVERY = 0.5;
const pending = new LuaTable<string, number>();
const lowest = new LuaTable<string, number>();
const gauges = new LuaTable<string, number>();

export function countSoon(key: string): void {
  const v = pending.get(key);
  pending.set(key, v === undefined ? 1 : v + 1);
}

export function addSoon(key: string, by: number): void {
  const v = pending.get(key);
  pending.set(key, v === undefined ? by : v + by);
}

/** `ch \t tenant \t type \t` per labels string, built once (tenants x cached types). */
const cacheKeys = new LuaTable<string, string>();

/**
 * One response of a cached route: what the cache did (HIT, MISS, EXPIRED, STALE, BYPASS), and
 * the bytes a hit or stale entry served. Counted in the worker, flushed with the others.
 */
export function countCache(labels: string, status: string, bytes: number): void {
  let prefix = cacheKeys.get(labels);
  if (prefix === undefined) {
    const [t1] = find(labels, SEP, 1, true);
    let t2: number | undefined;
    if (t1 !== undefined) [t2] = find(labels, SEP, t1 + 1, true);
    const tenant = t1 === undefined ? labels : sub(labels, 1, t1 - 1);
    const rtype = t2 === undefined ? "none" : sub(labels, t2 + 1);
    prefix = tenant + SEP + rtype + SEP;
    cacheKeys.set(labels, prefix);
  }
  countSoon("ch" + SEP + prefix + status);
  if (bytes > 0) addSoon("cb" + SEP + prefix + "bytes", bytes);
}

/** The lowest value seen until the next flush (tokens left in a budget's buckets). */
export function noteLowest(key: string, v: number): void {
  const cur = lowest.get(key);
  if (cur === undefined || v < cur) lowest.set(key, v);
}

/** A per-worker state (1/0). */
export function setGauge(key: string, v: number): void {
  gauges.set(key, v);
}

/** Timer: the worker's pending counts into the dict; sampled gauges under the worker's id, for a few flushes. */
export function flushSoon(this: void): void {
  const d = dict();
  if (d === undefined) return;
  for (const [k, v] of pairs(pending)) {
    const [ok] = d.incr(k, v, 0);
    if (ok === undefined) dictFull = dictFull + 1;
    pending.delete(k);
  }
  const w = tostring(ngx.worker.id() ?? 0);
  for (const [k, v] of pairs(lowest)) {
    d.set(k + SEP + w, v, 5);
    lowest.delete(k);
  }
  for (const [k, v] of pairs(gauges)) d.set(k + SEP + w, v, 30);
}

function esc(v: string): string {
  const [s] = string.gsub(v, '[\\"\n]', (c: string) => (c === "\n" ? "\\n" : "\\" + c));
  return s;
}

/** Latency buckets of one histogram family, by label value, in the order first seen. */
interface Histograms {
  readonly byLabel: LuaTable<string, LuaTable<string, number>>;
  readonly order: string[];
}

function addBucket(hs: Histograms, label: string, bucket: string, v: number): void {
  let h = hs.byLabel.get(label);
  if (h === undefined) {
    h = new LuaTable<string, number>();
    hs.byLabel.set(label, h);
    hs.order.push(label);
  }
  h.set(bucket, v);
}

/** Cumulative `_bucket` lines, `_sum` and `_count`, per label value. */
function histogramLines(lines: string[], name: string, labelName: string, hs: Histograms): void {
  for (const label of hs.order) {
    const h = hs.byLabel.get(label)!;
    const sel = labelName + '="' + esc(label) + '"';
    let cum = 0;
    for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
      cum = cum + (h.get(tostring(i)) ?? 0);
      const le = i < LATENCY_BUCKETS.length ? tostring(LATENCY_BUCKETS[i]!) : "+Inf";
      lines.push(name + "_bucket{" + sel + ',le="' + le + '"} ' + string.format("%d", cum));
    }
    lines.push(name + "_sum{" + sel + "} " + string.format("%.6f", h.get("sum") ?? 0));
    lines.push(name + "_count{" + sel + "} " + string.format("%d", cum));
  }
}

function splitKey(key: string): string[] {
  const out: string[] = [];
  for (const [part] of string.gmatch(key, "[^\t]+")) {
    if (part !== undefined) out.push(part);
  }
  return out;
}

/** The Prometheus exposition of everything in the dict. Admin listener only: get_keys locks. */
export function render(policyVersion: string): string {
  const d = dict();
  const lines: string[] = [];
  lines.push("# HELP fe_build_info Active policy bundle.");
  lines.push("# TYPE fe_build_info gauge");
  lines.push('fe_build_info{version="' + esc(policyVersion) + '"} 1');
  if (d === undefined) return concat(lines, "\n") + "\n";

  const keys = d.get_keys(0);
  table.sort(keys);
  const req: string[] = [];
  const requestHist: Histograms = { byLabel: new LuaTable(), order: [] };
  const introspectionHist: Histograms = { byLabel: new LuaTable(), order: [] };
  const auth: string[] = [];
  const jwks: string[] = [];
  const scopes: string[] = [];
  let ignoredScopes = 0;
  const verdicts: string[] = [];
  const decisions: string[] = [];
  const left = new LuaTable<string, number>();
  const leftOrder: string[] = [];
  const redisUp: string[] = [];
  let redisFailures = 0;
  let redisLocal = 0;
  const cacheReqs: string[] = [];
  const cacheBytes: string[] = [];
  const breakGlass: string[] = [];
  for (const key of keys) {
    const [v] = d.get(key);
    if (typeof v !== "number") continue;
    const parts = splitKey(key);
    if (parts[0] === "r" && parts.length === 5) {
      req.push('fe_requests_total{tenant="' + esc(parts[1]!) + '",interaction="' + esc(parts[2]!) +
        '",resource_type="' + esc(parts[3]!) + '",status_class="' + parts[4]! + '"} ' + string.format("%d", v));
    } else if (parts[0] === "l" && parts.length === 3) {
      addBucket(requestHist, parts[1]!, parts[2]!, v);
    } else if (parts[0] === "a" && parts.length === 4) {
      auth.push('fe_auth_validations_total{tenant="' + esc(parts[1]!) + '",path="' + esc(parts[2]!) + '",outcome="' + esc(parts[3]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "v" && parts.length === 2) {
      verdicts.push('fe_compartment_verdicts_built_total{source="' + esc(parts[1]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "x" && parts[1] === "ignored") {
      ignoredScopes = v;
    } else if (parts[0] === "s" && parts.length === 5) {
      scopes.push('fe_scope_denials_total{tenant="' + esc(parts[1]!) + '",resource_type="' + esc(parts[2]!) + '",missing="' + esc(parts[3]!) + '",mode="' + esc(parts[4]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "j" && parts.length === 3) {
      jwks.push('fe_jwks_fetches_total{issuer="' + esc(parts[1]!) + '",outcome="' + esc(parts[2]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "i" && parts.length === 3) {
      addBucket(introspectionHist, parts[1]!, parts[2]!, v);
    } else if (parts[0] === "q" && parts.length === 4) {
      decisions.push('fe_ratelimit_decisions_total{tenant="' + esc(parts[1]!) + '",budget="' + esc(parts[2]!) + '",outcome="' + esc(parts[3]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "t" && parts.length === 4) {
      // One sample per worker: the budget's lowest is the least of them.
      const sel = 'tenant="' + esc(parts[1]!) + '",budget="' + esc(parts[2]!) + '"';
      const cur = left.get(sel);
      if (cur === undefined) leftOrder.push(sel);
      if (cur === undefined || v < cur) left.set(sel, v);
    } else if (parts[0] === "ru" && parts.length === 2) {
      redisUp.push('fe_ratelimit_redis_up{worker="' + esc(parts[1]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "rf" && parts[1] === "failed") {
      redisFailures = v;
    } else if (parts[0] === "rf" && parts[1] === "local") {
      redisLocal = v;
    } else if (parts[0] === "ch" && parts.length === 4) {
      cacheReqs.push('fe_cache_requests_total{tenant="' + esc(parts[1]!) + '",resource_type="' + esc(parts[2]!) + '",status="' + esc(parts[3]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "bg" && parts.length === 3) {
      breakGlass.push('fe_break_glass_total{tenant="' + esc(parts[1]!) + '",outcome="' + esc(parts[2]!) + '"} ' + string.format("%d", v));
    } else if (parts[0] === "cb" && parts.length === 4) {
      cacheBytes.push('fe_cache_served_bytes_total{tenant="' + esc(parts[1]!) + '",resource_type="' + esc(parts[2]!) + '"} ' + string.format("%d", v));
    }
  }
  lines.push("# HELP fe_requests_total Requests handled by the gateway.");
  lines.push("# TYPE fe_requests_total counter");
  for (const l of req) lines.push(l);

  lines.push("# HELP fe_request_duration_seconds Time from the first request byte to the last log phase.");
  lines.push("# TYPE fe_request_duration_seconds histogram");
  histogramLines(lines, "fe_request_duration_seconds", "tenant", requestHist);

  lines.push("# HELP fe_auth_validations_total Token validations by tenant, path (jwt, introspection, cache) and outcome (ok or the reason); path cache is a token cache hit.");
  lines.push("# TYPE fe_auth_validations_total counter");
  for (const l of auth) lines.push(l);
  lines.push("# HELP fe_scope_denials_total SMART scope denials by tenant, resource type and missing permission (or rule); mode shadow counts would-be denials that were forwarded.");
  lines.push("# TYPE fe_scope_denials_total counter");
  for (const l of scopes) lines.push(l);
  lines.push("# HELP fe_break_glass_total Break-glass requests by tenant and outcome: the reason code when allowed, else not_enabled, bad_reason or not_eligible (refused).");
  lines.push("# TYPE fe_break_glass_total counter");
  for (const l of breakGlass) lines.push(l);
  lines.push("# HELP fe_scope_ignored_total Scopes in tokens that did not parse and grant nothing (once per token).");
  lines.push("# TYPE fe_scope_ignored_total counter");
  lines.push("fe_scope_ignored_total " + string.format("%d", ignoredScopes));
  lines.push("# HELP fe_compartment_verdicts_built_total Patient-compartment search verdicts built afresh: memo_miss (then memoized per token and query) or not_memoizable (form body on disk, memo full, no raw query); a repeated search counts nothing.");
  lines.push("# TYPE fe_compartment_verdicts_built_total counter");
  for (const l of verdicts) lines.push(l);
  lines.push("# HELP fe_jwks_fetches_total JWKS downloads by issuer and outcome.");
  lines.push("# TYPE fe_jwks_fetches_total counter");
  for (const l of jwks) lines.push(l);
  lines.push("# HELP fe_introspection_duration_seconds Introspection call latency by issuer.");
  lines.push("# TYPE fe_introspection_duration_seconds histogram");
  histogramLines(lines, "fe_introspection_duration_seconds", "issuer", introspectionHist);

  lines.push("# HELP fe_ratelimit_decisions_total Budget decisions by tenant, budget and outcome: admitted, refused (429), shadow_refused (would-be 429, forwarded), too_costly (403: the cost exceeds the burst), dict_full (429: no room for a new bucket). Flushed from the workers every " + tostring(FLUSH_EVERY) + " s.");
  lines.push("# TYPE fe_ratelimit_decisions_total counter");
  for (const l of decisions) lines.push(l);
  lines.push("# HELP fe_ratelimit_tokens_remaining Fewest cost tokens left in any bucket of the budget that a request spent from in the last sample (" + tostring(FLUSH_EVERY) + " s; absent after 5 s without traffic).");
  lines.push("# TYPE fe_ratelimit_tokens_remaining gauge");
  for (const sel of leftOrder) lines.push("fe_ratelimit_tokens_remaining{" + sel + "} " + string.format("%d", math.floor(left.get(sel)!)));
  lines.push("# HELP fe_ratelimit_redis_up 1 when the worker's last call to the cluster store succeeded, 0 while it counts locally (limits.store redis only).");
  lines.push("# TYPE fe_ratelimit_redis_up gauge");
  for (const l of redisUp) lines.push(l);
  lines.push("# HELP fe_ratelimit_redis_failures_total Calls to the cluster store that failed (then the worker counts locally for limits.redis.retryAfter).");
  lines.push("# TYPE fe_ratelimit_redis_failures_total counter");
  lines.push("fe_ratelimit_redis_failures_total " + string.format("%d", redisFailures));
  lines.push("# HELP fe_ratelimit_fallback_total Requests limited locally, at the node's share of each budget, because the cluster store was failing.");
  lines.push("# TYPE fe_ratelimit_fallback_total counter");
  lines.push("fe_ratelimit_fallback_total " + string.format("%d", redisLocal));

  lines.push("# HELP fe_cache_requests_total Responses of cached routes by tenant, resource type and what the cache did: HIT, MISS, EXPIRED, STALE or BYPASS (the X-Cache header). Flushed from the workers every " + tostring(FLUSH_EVERY) + " s.");
  lines.push("# TYPE fe_cache_requests_total counter");
  for (const l of cacheReqs) lines.push(l);
  lines.push("# HELP fe_cache_served_bytes_total Body bytes sent from the cache (HIT and STALE) by tenant and resource type.");
  lines.push("# TYPE fe_cache_served_bytes_total counter");
  for (const l of cacheBytes) lines.push(l);

  const [overflow] = d.get(OVERFLOW);
  const [series] = d.get(SERIES);
  lines.push("# HELP fe_metrics_series Request label sets in use (capped by policy metrics.maxSeries).");
  lines.push("# TYPE fe_metrics_series gauge");
  lines.push("fe_metrics_series " + string.format("%d", typeof series === "number" ? series : 0));
  lines.push("# HELP fe_metrics_series_overflow_total Requests counted under \"other\" because the series cap was reached.");
  lines.push("# TYPE fe_metrics_series_overflow_total counter");
  lines.push("fe_metrics_series_overflow_total " + string.format("%d", typeof overflow === "number" ? overflow : 0));
  lines.push("# HELP fe_metrics_dict_full_total Counter updates lost because the metrics dict was full (this worker).");
  lines.push("# TYPE fe_metrics_dict_full_total counter");
  lines.push("fe_metrics_dict_full_total " + string.format("%d", dictFull));
  return concat(lines, "\n") + "\n";
}
