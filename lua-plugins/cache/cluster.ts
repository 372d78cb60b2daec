/**
 * Generations across nodes, when `limits.store` is redis (README.md, "Several nodes"): a
 * write bumps its node's counters at once (cache/gen) and marks them dirty; once a second,
 * one worker per node sends the dirty ones to Redis (INCR) and reads every counter of the
 * policy back (one script call). A node's key holds its own count and the cluster's (with
 * the Redis dataset's epoch), so a
 * write on any node changes every node's keys within about two sync intervals, and the
 * writer's own at once. While Redis cannot be reached the dirty marks wait and each node
 * invalidates only on its own writes; the TTL bounds what another node's write leaves stale.
 */
import * as policy from "../generated/policy";
import { clusterEnabled, evalScript, redisReady } from "../ratelimit/redis";
import { ALL_TYPES, DIRTY, genKey, remoteKey } from "./gen";

/** Generations are kept in Redis too. */
export const clustered = clusterEnabled && policy.cache !== undefined;
export const SYNC_EVERY = 1;

const REDIS_PREFIX = "fe:gen:";

/** Every generation key of the policy: each caching tenant's types and its `*`. */
const allKeys: string[] = [];
for (const t of policy.tenants) {
  const c = t.cache;
  if (c === undefined) continue;
  allKeys.push(genKey(t.id, ALL_TYPES));
  for (const [type] of pairs(c.types)) allKeys.push(genKey(t.id, type));
}

/**
 * INCR the first ARGV[1] keys, then read all the others back, after the epoch: a Redis that
 * lost its data (a restart without persistence) starts counting from 0 again, and a count it
 * had given before would name old entries again. The epoch, set once per Redis dataset, keeps
 * every key new.
 */
const SCRIPT =
  "redis.call('set', KEYS[1], ARGV[2], 'NX') local epoch = redis.call('get', KEYS[1]) " +
  "local n = tonumber(ARGV[1]) for i = 2, n + 1 do redis.call('incr', KEYS[i]) end " +
  "local out = redis.call('mget', unpack(KEYS, n + 2)) table.insert(out, 1, epoch) return out";
const EPOCH = REDIS_PREFIX + "epoch";

const argv: (string | number)[] = [];
const dirtyKeys: string[] = [];
const dirtyCounts: number[] = [];

export function syncGenerations(this: void, premature: boolean): void {
  if (premature || !redisReady()) return;
  const d = ngx.shared.fe_cache_gen;
  if (d === undefined) return;
  let n = 0;
  for (const k of d.get_keys(0)) {
    if (string.sub(k, 1, 2) !== DIRTY) continue;
    const [v] = d.get(k);
    if (typeof v !== "number" || v <= 0) continue;
    n = n + 1;
    dirtyKeys[n - 1] = string.sub(k, 3);
    dirtyCounts[n - 1] = v;
  }
  argv[0] = EPOCH;
  for (let i = 0; i < n; i++) argv[1 + i] = REDIS_PREFIX + dirtyKeys[i]!;
  for (let j = 0; j < allKeys.length; j++) argv[1 + n + j] = REDIS_PREFIX + allKeys[j]!;
  const nkeys = 1 + n + allKeys.length;
  argv[nkeys] = n;
  argv[nkeys + 1] = tostring(ngx.now()) + "-" + tostring(ngx.worker.pid());
  const res = evalScript("cache-gen", SCRIPT, nkeys, argv, nkeys + 2);
  if (res === undefined) return;
  const epoch = res[0];
  if (typeof epoch !== "string") return;
  // Bumps made during the call stay dirty for the next sync.
  for (let j = 0; j < n; j++) {
    const [left] = d.incr(DIRTY + dirtyKeys[j]!, -dirtyCounts[j]!, 0);
    if (left !== undefined && left <= 0) d.delete(DIRTY + dirtyKeys[j]!);
  }
  for (let j = 0; j < allKeys.length; j++) {
    const v = res[j + 1];
    d.set(remoteKey(allKeys[j]!), epoch + "/" + (typeof v === "string" ? v : "0"));
  }
}
