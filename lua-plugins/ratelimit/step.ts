/**
 * Pipeline step, cost tokens: after identity, authorization (the write body's compartment
 * included) and the route's verdict, so a refused token or a denied request is never charged;
 * before the two steps that call the upstream for the gateway's own checks (a patient-scoped
 * write's current version, a checked read), so a throttled client never reaches the upstream.
 * Every budget of the tenant that applies must admit the request's cost; when one refuses,
 * the others get their tokens back. The decision itself is ratelimit/verdict's, the same for
 * every store.
 *
 * Its verdicts: a 429 `throttled` with an honest Retry-After (a client that waits that long is
 * admitted, one that comes back earlier is not); a 403 `too-costly` for a request that costs
 * more than a budget can ever hold; a 429 when a new bucket does not fit in the dict (it fails
 * closed for that budget, counted). Shadow budgets only count what they would refuse.
 * The RateLimit and RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers) of the
 * tightest enforced budget go on every response of the request, from `$fe_ratelimit*`.
 */
import { OUT_OF_ORDER, type RequestState, type Verdict } from "../core/request";
import { interactionClass } from "../fhir/cost";
import { countSoon } from "../metrics/metrics";
import { debtOf, giveBack, keep, spend, waitFor, type BucketDict } from "./bucket";
import { byTenant, chargeBudget, chargeCost, chargeKey, charges, ORIGIN, type Budget } from "./budgets";
import { clusterSpend } from "./cluster";
import { clusterEnabled, clusterRetry, clusterShare, redisDown, redisReady, syncEvery } from "./redis";
import { syncSpend } from "./sync";
import { alsoWait, begin, chargeAdmitted, chargeDictFull, chargeRefused, chargeTooCostly, decided, decision } from "./verdict";

const ngxNow = ngx.now;

function now(): number {
  return ngxNow() - ORIGIN;
}

/** Scratch lists reused by every request: the buckets spent from so far, and what. */
const keptKeys: string[] = [];
const keptCosts: number[] = [];
const keptDebts: number[] = [];
const keptRates: number[] = [];

let lastFullWarn = 0;

/** Once per 10 s per worker, not per request: a full dict is a sizing problem, not an event. */
function warnDictFull(b: Budget): void {
  const t = now();
  if (t - lastFullWarn < 10) return;
  lastFullWarn = t;
  ngx.log(ngx.WARN, "fhir-edge: the rate-limit dict is full: budget ", b.id, " refuses requests that need a new bucket (raise limits.dictSize)");
}

/**
 * Local buckets (this node's dict), at `share` of every budget (1, or 1/nodes while the cluster
 * store is unreachable), for the `n` charges in budgets' charge lists.
 */
function spendLocal(d: BucketDict, n: number, share: number, prefix: string): Verdict {
  const t = now();
  let kept = 0;
  begin();
  for (let i = 0; i < n; i++) {
    const b = chargeBudget[i]!;
    const cost = chargeCost[i]!;
    const rate = b.rate * share;
    const burst = b.burst * share;
    if (cost > b.burst) {
      chargeTooCostly(b, cost);
      continue;
    }
    if (cost > burst) {
      // Only this node's share (the cluster store is failing) is too small: once Redis answers
      // again the budget can pay, so it is a 429 for the retry interval, not a 403.
      chargeRefused(b, clusterRetry, burst, burst, rate);
      continue;
    }
    const k = prefix + chargeKey[i]!;
    if (decided()) {
      if (!b.shadow) alsoWait(waitFor(debtOf(d, k, t, rate) + cost, burst, rate));
      continue;
    }
    const [debt] = spend(d, k, cost, t, rate);
    if (debt === undefined) {
      chargeDictFull(b);
      warnDictFull(b);
      continue;
    }
    if (debt > burst) {
      giveBack(d, k, cost);
      chargeRefused(b, waitFor(debt, burst, rate), debt - cost, burst, rate);
      continue;
    }
    keptKeys[kept] = k;
    keptCosts[kept] = cost;
    keptDebts[kept] = debt;
    keptRates[kept] = rate;
    kept = kept + 1;
    chargeAdmitted(b, debt, burst, rate);
  }
  if (decided()) {
    for (let i = 0; i < kept; i++) giveBack(d, keptKeys[i]!, keptCosts[i]!);
  } else {
    for (let i = 0; i < kept; i++) keep(d, keptKeys[i]!, keptDebts[i]!, keptRates[i]!);
  }
  return decision();
}

const LOCAL = "";
const FALLBACK = "f\t";
const FALLBACK_COUNT = "rf\tlocal";

export function spendTokens(st: RequestState): Verdict {
  const tenant = st.tenant;
  const c = st.c;
  if (tenant === undefined || c === undefined) return OUT_OF_ORDER;
  const budgets = byTenant.get(tenant.id);
  if (budgets === undefined || budgets.length === 0) return undefined;
  const cost = c.cost;
  if (cost <= 0) return undefined;
  const d = ngx.shared.fe_ratelimit;
  if (d === undefined) return OUT_OF_ORDER;
  const klass = interactionClass(c) ?? "none";
  const n = charges(budgets, st.id, klass, cost, c.class_costs);
  if (n === 0) return undefined;
  if (clusterEnabled) {
    if (syncEvery !== undefined) {
      if (!redisDown()) return syncSpend(n);
    } else if (redisReady()) {
      const [v, failed] = clusterSpend(n);
      if (failed === undefined) return v;
      // The call yielded, and other requests have refilled the charge lists since.
      charges(budgets, st.id, klass, cost, c.class_costs);
    }
    // The cluster store is failing: this node limits alone, at its share, in its own buckets.
    countSoon(FALLBACK_COUNT);
    return spendLocal(d as unknown as BucketDict, n, clusterShare, FALLBACK);
  }
  return spendLocal(d as unknown as BucketDict, n, 1, LOCAL);
}
