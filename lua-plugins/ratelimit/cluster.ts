/**
 * Cluster budgets, a script per request (`limits.store: "redis"` without `redis.sync`): every
 * node's requests spend from one set of buckets in Redis. The script is the same GCRA as
 * ratelimit/bucket, on Redis's own clock, and it checks every budget of the request before it
 * commits any, so the cluster is as exact as one node. Why this is the default and what the
 * interval sync (ratelimit/sync) trades for its lower cost: ratelimit/README.md.
 */
import type { Verdict } from "../core/request";
import { chargeBudget, chargeCost, chargeKey, count, ORIGIN, type Budget } from "./budgets";
import { evalScript } from "./redis";
import { begin, chargeAdmitted, chargeRefused, decision, tooCostly } from "./verdict";

/**
 * KEYS: the request's buckets; ARGV: the time origin (ratelimit/budgets ORIGIN), then cost,
 * rate, burst, shadow ("1"/"0") per key.
 * Returns 1 (admitted and committed) or 0 (refused, nothing committed), then each bucket's
 * debt with the cost in it. Numbers go back as strings: Redis would truncate them to integers.
 */
export const SCRIPT = [
  "local t = redis.call('TIME')",
  "local now = tonumber(t[1]) - tonumber(ARGV[1]) + tonumber(t[2]) / 1000000",
  "local n = #KEYS",
  "local marks, debts, ok = {}, {}, 1",
  "for i = 1, n do",
  "  local cost, rate, burst = tonumber(ARGV[4 * i - 2]), tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])",
  "  local granted = now * rate",
  "  local v = tonumber(redis.call('GET', KEYS[i]))",
  "  if v == nil or v < granted then v = granted end",
  "  marks[i] = v + cost",
  "  debts[i] = v + cost - granted",
  "  if debts[i] > burst and ARGV[4 * i + 1] ~= '1' then ok = 0 end",
  "end",
  "local out = { ok }",
  "for i = 1, n do",
  "  local rate, burst = tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])",
  "  if ok == 1 and debts[i] <= burst then",
  "    redis.call('SET', KEYS[i], string.format('%.17g', marks[i]), 'PX', math.ceil(debts[i] / rate * 1000) + 1)",
  "  end",
  "  out[i + 1] = string.format('%.17g', debts[i])",
  "end",
  "return out",
].join("\n");

/**
 * The request's `n` charges (ratelimit/budgets) against the cluster's buckets: its verdict, or
 * (undefined, true) when Redis failed and the caller must count locally at the node's share.
 */
export function clusterSpend(n: number): LuaMultiReturn<[Verdict, undefined] | [undefined, true]> {
  // The Redis call yields, and the worker serves other requests meanwhile, which refill the
  // module's scratch lists: what this request needs after the call is in its own tables.
  const bs: Budget[] = [];
  const cs: number[] = [];
  const argv: (string | number)[] = [];
  let m = 0;
  for (let i = 0; i < n; i++) {
    const b = chargeBudget[i]!;
    const cost = chargeCost[i]!;
    if (cost > b.burst) {
      // No wait would ever admit it: a 403 (decided before the Redis call), whatever else refuses.
      count(b, b.shadow ? "shadow_too_costly" : "too_costly");
      if (!b.shadow) return $multi(tooCostly(b, cost, b.burst), undefined);
      continue;
    }
    bs[m] = b;
    cs[m] = cost;
    argv[m] = chargeKey[i]!;
    m = m + 1;
  }
  if (m === 0) return $multi(undefined, undefined);
  argv[m] = ORIGIN;
  for (let j = 0; j < m; j++) {
    const b = bs[j]!;
    argv[m + 4 * j + 1] = cs[j]!;
    argv[m + 4 * j + 2] = b.rate;
    argv[m + 4 * j + 3] = b.burst;
    argv[m + 4 * j + 4] = b.shadow ? "1" : "0";
  }
  const res = evalScript("spend", SCRIPT, m, argv, 5 * m + 1);
  if (res === undefined) return $multi(undefined, true);
  const out = res as (number | string)[];
  // The script refused or committed every charge at once; here only what to tell the client.
  begin();
  for (let j = 0; j < m; j++) {
    const b = bs[j]!;
    const debt = tonumber(out[j + 1]) ?? 0;
    if (debt > b.burst) chargeRefused(b, (debt - b.burst) / b.rate, debt - cs[j]!, b.burst, b.rate);
    else chargeAdmitted(b, debt, b.burst, b.rate);
  }
  return $multi(decision(), undefined);
}
