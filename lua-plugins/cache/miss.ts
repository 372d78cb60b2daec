/**
 * The miss budget's spending, in the log phase, once the cache went to the upstream: the
 * access phase (cache/step) refused the request if the bucket could not pay, and left the
 * bucket's rate, the cost and the bucket in `$fe_cache_miss` (the key last: it may hold tabs). Spent whole, never refused here: the
 * upstream call has happened. Concurrent misses may overdraw the bucket by what they cost;
 * the next requests then wait for it to refill.
 */
import { keep, spend, type BucketDict } from "../ratelimit/bucket";
import { ORIGIN } from "../ratelimit/budgets";

const find = string.find;
const sub = string.sub;
const tonumber_ = tonumber;

export function spendMiss(charge: string): void {
  const [t1] = find(charge, "\t", 1, true);
  if (t1 === undefined) return;
  const [t2] = find(charge, "\t", t1 + 1, true);
  if (t2 === undefined) return;
  const rate = tonumber_(sub(charge, 1, t1 - 1));
  const cost = tonumber_(sub(charge, t1 + 1, t2 - 1));
  const key = sub(charge, t2 + 1);
  const d = ngx.shared.fe_ratelimit as unknown as BucketDict | undefined;
  if (rate === undefined || cost === undefined || d === undefined) return;
  const [debt] = spend(d, key, cost, ngx.now() - ORIGIN, rate);
  if (debt !== undefined) keep(d, key, debt, rate);
}
