/**
 * The Redis connection of the cluster store (`limits.store: "redis"`), shared by both ways of
 * counting there (ratelimit/cluster: a script per request; ratelimit/sync: local counts pushed
 * on an interval): the pooled client, the scripts by SHA, and the worker's health state.
 *
 * A failure (refused, past `timeout`, a script error) puts the worker in fallback: it counts
 * locally at 1/nodes of every budget, says so once per 10 s in the error log (never per
 * request), counts every failure, and after `retry_s` lets one request (or one sync) probe
 * Redis again, so a Redis that is down sees one try per worker per interval.
 */
import * as policy from "../generated/policy";
import { countSoon, setGauge } from "../metrics/metrics";

interface Redis {
  set_timeout(this: Redis, ms: number): void;
  connect(this: Redis, host: string, port: number, opts?: { pool?: string; pool_size?: number }): LuaMultiReturn<[number | undefined, string | undefined]>;
  set_keepalive(this: Redis, idleMs: number, poolSize: number): LuaMultiReturn<[number | undefined, string | undefined]>;
  get_reused_times(this: Redis): LuaMultiReturn<[number | undefined, string | undefined]>;
  close(this: Redis): void;
  auth(this: Redis, password: string): LuaMultiReturn<[unknown, string | undefined]>;
  select(this: Redis, db: number): LuaMultiReturn<[unknown, string | undefined]>;
  script(this: Redis, cmd: "load", script: string): LuaMultiReturn<[unknown, string | undefined]>;
  evalsha(this: Redis, sha: string, nkeys: number, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  eval(this: Redis, script: string, nkeys: number, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
}
interface RedisModule {
  new: (this: void) => LuaMultiReturn<[Redis | undefined, string | undefined]>;
}


const conf = policy.ratelimit.redis;
/** Budgets count in Redis. */
export const clusterEnabled = policy.ratelimit.store === "redis" && conf !== undefined;
/** Local counts pushed to Redis every this many seconds; undefined: a script per request. */
export const syncEvery: number | undefined = clusterEnabled && conf!.sync_ms !== undefined ? conf!.sync_ms / 1000 : undefined;
/** Seconds between two probes of a failing Redis. */
export const clusterRetry = conf === undefined ? 1 : conf.retry_s;
/** While Redis fails, each node's share of every budget. */
export const clusterShare = conf === undefined ? 1 : 1 / conf.nodes;
const password = conf === undefined ? undefined : conf.password_env !== undefined ? os.getenv(conf.password_env) : conf.password;

let redisModule: RedisModule | undefined;
const shas = new LuaTable<string, string>();
let down = false;
let downUntil = 0;
let lastWarn = 0;
const WARN_EVERY = 10;

function loadModule(): RedisModule | undefined {
  if (redisModule !== undefined) return redisModule;
  // OpenResty ships resty.redis; Debian's lua-nginx-redis installs the same module as nginx.redis.
  for (const name of ["resty.redis", "nginx.redis"]) {
    const [ok, mod] = pcall(require, name);
    if (ok) {
      redisModule = mod as RedisModule;
      return redisModule;
    }
  }
  return undefined;
}

function warnOnce(msg: string): void {
  const t = ngx.now();
  if (t - lastWarn < WARN_EVERY) return;
  lastWarn = t;
  ngx.log(ngx.WARN, "fhir-edge: cluster rate limits: ", msg, "; counting locally at 1/", conf === undefined ? 1 : conf.nodes, " of each budget");
}

/** True when the worker may call Redis now: not backing off, or its one probe of the interval. */
export function redisReady(): boolean {
  if (!clusterEnabled) return false;
  if (!down) return true;
  const t = ngx.now();
  if (t < downUntil) return false;
  downUntil = t + conf!.retry_s;
  return true;
}

/** True while the worker counts locally because Redis failed. */
export function redisDown(): boolean {
  return down;
}

export function redisFailed(msg: string): void {
  down = true;
  downUntil = ngx.now() + conf!.retry_s;
  countSoon("rf\tfailed");
  setGauge("ru", 0);
  warnOnce(msg);
}

function redisOk(): void {
  if (down) {
    down = false;
    ngx.log(ngx.WARN, "fhir-edge: cluster rate limits: Redis answers again; budgets count in Redis");
  }
  setGauge("ru", 1);
}

function connect(): LuaMultiReturn<[Redis, undefined] | [undefined, string]> {
  const mod = loadModule();
  if (mod === undefined) return $multi(undefined, "lua-resty-redis is not installed");
  const [red, err] = mod.new();
  if (red === undefined) return $multi(undefined, err ?? "redis client");
  red.set_timeout(conf!.timeout_ms);
  const [ok, cerr] = red.connect(conf!.host, conf!.port, { pool_size: conf!.pool_size });
  if (ok === undefined) return $multi(undefined, "connect: " + (cerr ?? "failed"));
  const [reused] = red.get_reused_times();
  if (reused === 0) {
    if (password !== undefined) {
      const [a, aerr] = red.auth(password);
      if (a === undefined) return $multi(undefined, "auth: " + (aerr ?? "failed"));
    }
    if (conf!.db !== 0) {
      const [s, serr] = red.select(conf!.db);
      if (s === undefined) return $multi(undefined, "select: " + (serr ?? "failed"));
    }
  }
  return $multi(red, undefined);
}

/**
 * Runs a script (loaded once per worker, again after a Redis restart) with `nkeys` KEYS then
 * ARGV from argv[1..count]. Its table reply, or undefined after a failure, which is recorded.
 */
export function evalScript(name: string, script: string, nkeys: number, argv: readonly (string | number)[], count: number): unknown[] | undefined {
  const [red, cerr] = connect();
  if (red === undefined) {
    redisFailed(cerr);
    return undefined;
  }
  let sha = shas.get(name);
  if (sha === undefined) {
    const [s, lerr] = red.script("load", script);
    if (typeof s !== "string") {
      red.close();
      redisFailed("script load: " + (lerr ?? "bad reply"));
      return undefined;
    }
    sha = s;
    shas.set(name, s);
  }
  let [res, err] = red.evalsha(sha, nkeys, ...unpack(argv as (string | number)[], 1, count));
  if (err !== undefined && string.find(err, "NOSCRIPT", 1, true)[0] !== undefined) {
    shas.delete(name);
    [res, err] = red.eval(script, nkeys, ...unpack(argv as (string | number)[], 1, count));
  }
  if (err !== undefined || type(res) !== "table") {
    red.close();
    redisFailed("script: " + (err ?? "bad reply"));
    return undefined;
  }
  red.set_keepalive(conf!.idle_ms, conf!.pool_size);
  redisOk();
  return res as unknown[];
}
