/**
 * One request's decision over its charges, the same for every store (local, cluster script,
 * synced views), and what it tells the client: the refusals, and the RateLimit /
 * RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers) of one budget, which nginx
 * adds to the response from `$fe_ratelimit*` (compiler/emit/gateway-conf).
 *
 * The decision is module state, reset by `begin()`: a store calls begin, one of the charge
 * functions per charge, then `decision()`, with no yield in between (the cluster store
 * begins after its Redis call).
 */
import type { Verdict } from "../core/request";
import { refusal, type Refusal } from "../core/request";
import { noteLowest } from "../metrics/metrics";
import { count, type Budget } from "./budgets";

const ngxVar = ngx.var;
const fmt = string.format;
const ceil = math.ceil;
const floor = math.floor;

/** A bucket could not be created without forgetting another client's spending: fail closed. */
export const DICT_FULL = refusal(429, "throttled", "The gateway cannot track this budget right now.", { "Retry-After": "1" });

/** `wait` seconds until the bucket can pay: a client that waits the rounded-up value is admitted. */
export function throttled(b: Budget, wait: number): Refusal {
  const secs = fmt("%d", ceil(wait));
  return refusal(429, "throttled", "The request costs more than budget " + b.id + " holds now; retry after " + secs + " s.", { "Retry-After": secs });
}

/** More than the budget's burst: no wait would ever admit it. */
export function tooCostly(b: Budget, cost: number, burst: number): Refusal {
  return refusal(403, "too-costly", "The request costs " + fmt("%d", cost) + " tokens, more than budget " + b.id + " can ever hold (" + fmt("%d", floor(burst)) + "); split it.");
}

/** `"id";q=..;w=..` and `"id";r=<tokens left>;t=<seconds until full>` of the budget that applied. */
export function setHeaders(b: Budget, debt: number, burst: number, rate: number): void {
  const left = burst - debt;
  ngxVar.fe_ratelimit_policy = b.policyItem;
  ngxVar.fe_ratelimit = '"' + b.id + '";r=' + fmt("%d", left > 0 ? floor(left) : 0) + ";t=" + fmt("%d", debt > 0 ? ceil(debt / rate) : 0);
}

/** A 403 or a 429 no wait decides (too costly, dict full): the first one wins. */
let failed: Refusal | undefined;
/** The first enforced budget that refused, its debt without this request, and the longest wait of all. */
let refused: Budget | undefined;
let refusedDebt = 0;
let refusedBurst = 0;
let refusedRate = 0;
let wait = 0;
/** The enforced budget with the fewest tokens left after an admitted charge. */
let tight: Budget | undefined;
let tightLeft = 0;
let tightDebt = 0;
let tightBurst = 0;
let tightRate = 0;
/** Charges that would be admitted, counted only when the request is. */
const admitted: Budget[] = [];
const admittedLeft: number[] = [];
let nAdmitted = 0;

export function begin(): void {
  failed = undefined;
  refused = undefined;
  wait = 0;
  tight = undefined;
  nAdmitted = 0;
}

/** Refused already: the store only needs to say how long the client would wait. */
export function decided(): boolean {
  return failed !== undefined || refused !== undefined;
}

/** The charge costs more than the budget's burst: no wait would ever admit it, a 403. */
export function chargeTooCostly(b: Budget, cost: number): void {
  count(b, b.shadow ? "shadow_too_costly" : "too_costly");
  if (!b.shadow && failed === undefined) failed = tooCostly(b, cost, b.burst);
}

/** The charge cannot be tracked (no room for its bucket): fails closed for an enforced budget. */
export function chargeDictFull(b: Budget): void {
  count(b, "dict_full");
  if (!b.shadow && failed === undefined) failed = DICT_FULL;
}

/**
 * The bucket cannot pay before `w` seconds; `debt` is its debt without this request. A shadow
 * budget only counts it. The headers are the first refusing budget's, Retry-After the longest wait.
 */
export function chargeRefused(b: Budget, w: number, debt: number, burst: number, rate: number): void {
  if (b.shadow) {
    count(b, "shadow_refused");
    return;
  }
  if (refused === undefined) {
    refused = b;
    refusedDebt = debt;
    refusedBurst = burst;
    refusedRate = rate;
  }
  if (w > wait) wait = w;
}

/** Another budget's wait once the request is refused (nothing is counted for it). */
export function alsoWait(w: number): void {
  if (w > wait) wait = w;
}

/** The bucket can pay: `debt` with this request in it. */
export function chargeAdmitted(b: Budget, debt: number, burst: number, rate: number): void {
  const left = burst - debt;
  admitted[nAdmitted] = b;
  admittedLeft[nAdmitted] = left;
  nAdmitted = nAdmitted + 1;
  if (b.shadow || (tight !== undefined && left >= tightLeft)) return;
  tight = b;
  tightLeft = left;
  tightDebt = debt;
  tightBurst = burst;
  tightRate = rate;
}

/** The request's verdict, its counts and its RateLimit fields. */
export function decision(): Verdict {
  if (failed !== undefined) return failed;
  if (refused !== undefined) {
    count(refused, "refused");
    setHeaders(refused, refusedDebt, refusedBurst, refusedRate);
    return throttled(refused, wait);
  }
  for (let i = 0; i < nAdmitted; i++) {
    const b = admitted[i]!;
    count(b, "admitted");
    noteLowest(b.gauge, admittedLeft[i]!);
  }
  if (tight !== undefined) setHeaders(tight, tightDebt, tightBurst, tightRate);
  return undefined;
}
