/**
 * Cluster budgets counted locally and synced on an interval (`limits.redis.sync`): the cheaper,
 * looser way. Each worker decides alone from what it knew at its last sync: a bucket's global
 * debt then, refilled since at the budget's rate, plus what this worker spent since. Every
 * `sync` seconds a timer pushes the worker's spending to Redis (one script for all its buckets)
 * and takes back each bucket's global debt.
 *
 * What that costs in accuracy, measured in test/integration/ratelimit/cluster.test.ts and
 * written up in ratelimit/README.md: between two syncs every worker of every node counts the
 * refill as its own, so the cluster admits up to (workers - 1) x (burst + rate x sync) more
 * than the budget; the debt this leaves in Redis is paid back by waiting after, so the
 * sustained rate holds. When Redis fails, a node decides from its last view until its next
 * sync fails, then counts locally at its share: after an idle pause that is up to one more
 * burst per node. A request path with no Redis call: nothing but Lua arithmetic.
 *
 * Bounded: at most MAX_VIEWS buckets per worker (a new one past that is refused, counted as
 * dict_full); a bucket that is full again and has nothing to push is forgotten at the sync.
 */
import type { Verdict } from "../core/request";
import { chargeBudget, chargeCost, chargeKey, ORIGIN } from "./budgets";
import { evalScript, redisReady } from "./redis";
import { begin, chargeAdmitted, chargeDictFull, chargeRefused, chargeTooCostly, decided, decision } from "./verdict";

interface View {
  /** The bucket's global debt at the last sync, and the worker's (origin-based) time then. */
  debt: number;
  at: number;
  /** Spent by this worker since the last sync, and what is being pushed right now. */
  spent: number;
  pushing: number;
  readonly rate: number;
  readonly burst: number;
}

const MAX_VIEWS = 10_000;
const views = new LuaTable<string, View>();
let viewCount = 0;

/**
 * KEYS: buckets; ARGV: origin, then delta, rate per key. Adds each delta to the bucket's spent
 * mark (a full bucket starts at now x rate) and returns every bucket's debt, as strings.
 */
export const SYNC_SCRIPT = [
  "local t = redis.call('TIME')",
  "local now = tonumber(t[1]) - tonumber(ARGV[1]) + tonumber(t[2]) / 1000000",
  "local out = {}",
  "for i = 1, #KEYS do",
  "  local delta, rate = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])",
  "  local granted = now * rate",
  "  local v = tonumber(redis.call('GET', KEYS[i]))",
  "  if v == nil or v < granted then v = granted end",
  "  v = v + delta",
  "  if v > granted then redis.call('SET', KEYS[i], string.format('%.17g', v), 'PX', math.ceil((v - granted) / rate * 1000) + 1) end",
  "  out[i] = string.format('%.17g', v - granted)",
  "end",
  "return out",
].join("\n");

function debtNow(v: View, t: number): number {
  const d = v.debt - v.rate * (t - v.at);
  return (d > 0 ? d : 0) + v.pushing + v.spent;
}

const used: View[] = [];
const usedCosts: number[] = [];

/** The request's `n` charges against the worker's views: admitted (and counted for the next push) or refused. */
export function syncSpend(n: number): Verdict {
  const t = ngx.now() - ORIGIN;
  let m = 0;
  begin();
  for (let i = 0; i < n; i++) {
    const b = chargeBudget[i]!;
    const cost = chargeCost[i]!;
    const key = chargeKey[i]!;
    if (cost > b.burst) {
      chargeTooCostly(b, cost);
      continue;
    }
    let v = views.get(key);
    if (v === undefined) {
      if (viewCount >= MAX_VIEWS) {
        chargeDictFull(b);
        continue;
      }
      v = { debt: 0, at: t, spent: 0, pushing: 0, rate: b.rate, burst: b.burst };
      views.set(key, v);
      viewCount = viewCount + 1;
    }
    const debt = debtNow(v, t) + cost;
    if (debt > b.burst) {
      chargeRefused(b, (debt - b.burst) / b.rate, debt - cost, b.burst, b.rate);
      continue;
    }
    used[m] = v;
    usedCosts[m] = cost;
    m = m + 1;
    chargeAdmitted(b, debt, b.burst, b.rate);
  }
  if (!decided()) for (let i = 0; i < m; i++) used[i]!.spent = used[i]!.spent + usedCosts[i]!;
  return decision();
}

const MAX_PER_CALL = 500;

/**
 * One script call for `views[from..to)`. Its own argument list: the call yields, and another
 * sync (a slow Redis, an interval shorter than the timeout) may run meanwhile.
 */
function push(keys: readonly string[], views_: readonly View[], from: number, to: number): void {
  const n = to - from;
  const argv: (string | number)[] = [];
  for (let i = 0; i < n; i++) {
    const v = views_[from + i]!;
    argv[i] = keys[from + i]!;
    argv[n + 2 * i + 1] = v.pushing;
    argv[n + 2 * i + 2] = v.rate;
  }
  argv[n] = ORIGIN;
  const res = evalScript("sync", SYNC_SCRIPT, n, argv, 3 * n + 1);
  const t = ngx.now() - ORIGIN;
  for (let i = 0; i < n; i++) {
    const v = views_[from + i]!;
    if (res === undefined) {
      // Not pushed: it goes with the next sync.
      v.spent = v.spent + v.pushing;
    } else {
      v.debt = tonumber(res[i]) ?? v.debt;
      v.at = t;
    }
    v.pushing = 0;
  }
}

/**
 * Timer: every bucket the worker spent from, or still holds debt in, goes to Redis. The views
 * are walked first, without yielding (requests add views meanwhile, and a table must not gain
 * keys while `pairs` walks it), then pushed.
 */
export function syncNow(this: void, premature: boolean): void {
  if (premature || !redisReady()) return;
  const t = ngx.now() - ORIGIN;
  const keys: string[] = [];
  const due: View[] = [];
  for (const [key, v] of pairs(views)) {
    if (v.spent === 0 && v.pushing === 0 && v.debt - v.rate * (t - v.at) <= 0) {
      views.delete(key);
      viewCount = viewCount - 1;
      continue;
    }
    if (v.pushing !== 0) continue;
    v.pushing = v.spent;
    v.spent = 0;
    keys.push(key);
    due.push(v);
  }
  for (let from = 0; from < keys.length; from += MAX_PER_CALL) push(keys, due, from, math.min(from + MAX_PER_CALL, keys.length));
}
