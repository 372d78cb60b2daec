/**
 * What the budgets tell the client, shared by the local and the cluster store: the refusals,
 * and the RateLimit / RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers) of one
 * budget, which nginx adds to the response from `$fe_ratelimit*` (nginx/gateway-conf).
 */
import { refusal, type Refusal } from "../core/request";
import type { Budget } from "./budgets";

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
