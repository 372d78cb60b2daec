/**
 * A token bucket in a shared dict, as GCRA: one number per bucket, the "spent mark" V in cost
 * tokens. `now * rate` tokens have been granted since the epoch, so the bucket owes
 * `debt = V - now * rate`, and holds `burst - debt`. A request of cost c moves V up by c and is
 * admitted when the debt stays within the burst. Pure over the dict it is given (the methods of
 * a lua_shared_dict), so it runs under plain LuaJIT with a table double.
 *
 * Atomic across workers without a lock: `incr` is the dict's only read-modify-write, and it is
 * all this needs. Spend is one incr; a refusal (this bucket's or a later budget's) gives the
 * cost back with a second incr, exactly. A full bucket is the absent key: every write sets the
 * key's time to live to `debt / rate`, when the bucket is full again, so an idle bucket costs
 * no memory and its debt never outlives it.
 *
 * Known limits, written down where they live:
 * - Between a spend and its give-back, another worker sees the debt with that cost in it, and
 *   may refuse a request the bucket could have paid for. It errs strict, for microseconds.
 * - Two workers' time-to-live writes can land out of order, so a key may expire up to one
 *   request's cost early, when the bucket is nearly full anyway: at most one request's cost
 *   too lenient, once per idle period.
 * - A key can outlive its full bucket (a given-back first spend keeps the time to live it was
 *   created with), leaving the mark behind the clock; the next spend brings it to now, and two
 *   spends doing that at once err strict by what was behind (at most that one cost).
 * - Each worker's `now` is its cached event-loop time (milliseconds).
 */

/** The dict methods used here; methods keep self, as on a lua_shared_dict. */
export interface BucketDict {
  incr(this: BucketDict, key: string, value: number): LuaMultiReturn<[number | undefined, string | undefined, boolean | undefined]>;
  safe_add(this: BucketDict, key: string, value: number, exptime: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  expire(this: BucketDict, key: string, exptime: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
  get(this: BucketDict, key: string): LuaMultiReturn<[string | number | boolean | undefined, number | undefined]>;
}

/** The dict could not hold a new bucket without forgetting another's debt. */
export type BucketError = "dict_full";

/** A time to live of 0 means "never" to a shared dict: the least is one millisecond. */
const MIN_TTL = 0.001;

function ttl(debt: number, rate: number): number {
  return debt / rate + MIN_TTL;
}

/**
 * Spends `cost` from the bucket at `key`, and returns its debt afterwards (cost included).
 * The caller admits when `debt <= burst` (then calls `keep`), or gives the cost back (`giveBack`).
 */
export function spend(d: BucketDict, key: string, cost: number, now: number, rate: number): LuaMultiReturn<[number, undefined] | [undefined, BucketError]> {
  const granted = now * rate;
  let [v] = d.incr(key, cost);
  if (v === undefined) {
    // A full bucket: its first spend since. safe_add never evicts another bucket to make room.
    const [ok, err] = d.safe_add(key, granted + cost, ttl(cost, rate));
    if (ok) return $multi(cost, undefined);
    if (err !== "exists") return $multi(undefined, "dict_full");
    // Another worker created it in between.
    [v] = d.incr(key, cost);
    if (v === undefined) return $multi(undefined, "dict_full");
  }
  const debt = v - granted;
  if (debt >= cost) return $multi(debt, undefined);
  // The mark was behind the clock: the key outlived a full bucket (a given-back first spend
  // keeps its time to live; TTL rounding). The bucket was full, so bring the mark to now: two
  // workers doing this at once err strict, by at most what was behind.
  d.incr(key, cost - debt);
  return $multi(cost, undefined);
}

/** An admitted spend: the bucket's key lives until the bucket is full again. */
export function keep(d: BucketDict, key: string, debt: number, rate: number): void {
  d.expire(key, ttl(debt, rate));
}

/** A refused or uncommitted spend: the cost goes back, exactly. */
export function giveBack(d: BucketDict, key: string, cost: number): void {
  d.incr(key, -cost);
}

/** The bucket's debt now without spending (0 for a full bucket). */
export function debtOf(d: BucketDict, key: string, now: number, rate: number): number {
  const [v] = d.get(key);
  if (typeof v !== "number") return 0;
  const debt = v - now * rate;
  return debt > 0 ? debt : 0;
}

/** Seconds until a bucket with this debt can pay `cost` more within `burst`. */
export function waitFor(debt: number, burst: number, rate: number): number {
  const over = debt - burst;
  return over > 0 ? over / rate : 0;
}
