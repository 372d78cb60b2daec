/**
 * Cluster budgets, a script per request (`limits.store: "redis"` without `redis.sync`): every
 * node's requests spend from one set of buckets in Redis. The script is the same GCRA as
 * ratelimit/bucket, on Redis's own clock, and it checks every budget of the request before it
 * commits any, so the cluster is as exact as one node. Why this is the default and what the
 * interval sync (ratelimit/sync) trades for its lower cost: ratelimit/README.md.
 */
import type { RequestState, Verdict } from "../core/request";
import { noteLowest } from "../metrics/metrics";
import { count, keyOf, ORIGIN, type Budget } from "./budgets";
import { evalScript } from "./redis";
import { setHeaders, throttled, tooCostly } from "./verdict";

/**
 * KEYS: the request's buckets; ARGV: the time origin (ratelimit/step ORIGIN), cost, then rate,
 * burst, shadow ("1"/"0") per key.
 * Returns 1 (admitted and committed) or 0 (refused, nothing committed), then each bucket's
 * debt with the cost in it. Numbers go back as strings: Redis would truncate them to integers.
 */
export const SCRIPT = [
  "local t = redis.call('TIME')",
  "local now = tonumber(t[1]) - tonumber(ARGV[1]) + tonumber(t[2]) / 1000000",
  "local cost = tonumber(ARGV[2])",
  "local n = #KEYS",
  "local marks, debts, ok = {}, {}, 1",
  "for i = 1, n do",
  "  local rate, burst = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])",
  "  local granted = now * rate",
  "  local v = tonumber(redis.call('GET', KEYS[i]))",
  "  if v == nil or v < granted then v = granted end",
  "  marks[i] = v + cost",
  "  debts[i] = v + cost - granted",
  "  if debts[i] > burst and ARGV[3 * i + 2] ~= '1' then ok = 0 end",
  "end",
  "local out = { ok }",
  "for i = 1, n do",
  "  local rate, burst = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])",
  "  if ok == 1 and debts[i] <= burst then",
  "    redis.call('SET', KEYS[i], string.format('%.17g', marks[i]), 'PX', math.ceil(debts[i] / rate * 1000) + 1)",
  "  end",
  "  out[i + 1] = string.format('%.17g', debts[i])",
  "end",
  "return out",
].join("\n");

/** Scratch lists, reused: the budgets that apply, and the script's KEYS then ARGV. */
const used: Budget[] = [];
const argv: (string | number)[] = [];

/**
 * The request against the cluster's buckets: its verdict, or (undefined, true) when Redis
 * failed and the caller must count locally at the node's share.
 */
export function clusterSpend(budgets: readonly Budget[], st: RequestState, cost: number, klass: string): LuaMultiReturn<[Verdict, undefined] | [undefined, true]> {
  let n = 0;
  for (let i = 0; i < budgets.length; i++) {
    const b = budgets[i]!;
    const key = keyOf(b, st.id, klass);
    if (key === undefined) continue;
    if (cost > b.burst) {
      count(b, b.shadow ? "shadow_too_costly" : "too_costly");
      if (!b.shadow) return $multi(tooCostly(b, cost, b.burst), undefined);
      continue;
    }
    used[n] = b;
    argv[n] = key;
    n = n + 1;
  }
  if (n === 0) return $multi(undefined, undefined);
  argv[n] = ORIGIN;
  argv[n + 1] = cost;
  for (let i = 0; i < n; i++) {
    const b = used[i]!;
    argv[n + 3 * i + 2] = b.rate;
    argv[n + 3 * i + 3] = b.burst;
    argv[n + 3 * i + 4] = b.shadow ? "1" : "0";
  }
  const res = evalScript("spend", SCRIPT, n, argv, 4 * n + 2);
  if (res === undefined) return $multi(undefined, true);
  const out = res as (number | string)[];
  const admitted = out[0] === 1;
  let tight: Budget | undefined;
  let tightLeft = 0;
  let tightDebt = 0;
  let refused: Budget | undefined;
  let wait = 0;
  for (let i = 0; i < n; i++) {
    const b = used[i]!;
    const debt = tonumber(out[i + 1]) ?? 0;
    if (debt > b.burst) {
      if (b.shadow) {
        count(b, "shadow_refused");
        continue;
      }
      const w = (debt - b.burst) / b.rate;
      if (refused === undefined || w > wait) {
        refused = b;
        wait = w;
        tightDebt = debt - cost;
      }
      continue;
    }
    if (!admitted || b.shadow) continue;
    count(b, "admitted");
    const left = b.burst - debt;
    noteLowest(b.gauge, left);
    if (tight === undefined || left < tightLeft) {
      tight = b;
      tightLeft = left;
      tightDebt = debt;
    }
  }
  if (refused !== undefined) {
    count(refused, "refused");
    setHeaders(refused, tightDebt, refused.burst, refused.rate);
    return $multi(throttled(refused, wait), undefined);
  }
  if (tight !== undefined) setHeaders(tight, tightDebt, tight.burst, tight.rate);
  return $multi(undefined, undefined);
}
