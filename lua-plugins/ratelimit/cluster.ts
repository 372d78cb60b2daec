/**
 * Cluster budgets (`limits.store: "redis"`): every node's requests spend from one set of buckets
 * in Redis, through one server-side script per request. The script is the same GCRA as
 * ratelimit/bucket, on Redis's own clock, and it checks every budget of the request before it
 * commits any, so the cluster is as exact as one node (docs in ratelimit/README.md: why a
 * script per request and not local counts synced on an interval).
 *
 * Redis unreachable, slow past `timeout`, or failing: the worker counts locally at 1/nodes of
 * every budget (the caller's fallback), says so once per interval in the error log (not per
 * request), and tries Redis again after `retry_s`. Connections are pooled (keepalive).
 */
import type { RequestState, Verdict } from "../core/request";
import * as policy from "../generated/policy";
import { countSoon, noteLowest, setGauge } from "../metrics/metrics";
import { keyOf, type Budget } from "./budgets";
import { setHeaders, throttled, tooCostly } from "./verdict";

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

/**
 * KEYS: the request's buckets; ARGV: cost, then rate, burst, shadow ("1"/"0") per key.
 * Returns 1 (admitted and committed) or 0 (refused, nothing committed), then each bucket's
 * debt with the cost in it. Numbers go back as strings: Redis would truncate them to integers.
 */
export const SCRIPT = [
  "local t = redis.call('TIME')",
  "local now = tonumber(t[1]) + tonumber(t[2]) / 1000000",
  "local cost = tonumber(ARGV[1])",
  "local n = #KEYS",
  "local marks, debts, ok = {}, {}, 1",
  "for i = 1, n do",
  "  local rate, burst = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])",
  "  local granted = now * rate",
  "  local v = tonumber(redis.call('GET', KEYS[i]))",
  "  if v == nil or v < granted then v = granted end",
  "  marks[i] = v + cost",
  "  debts[i] = v + cost - granted",
  "  if debts[i] > burst and ARGV[3 * i + 1] ~= '1' then ok = 0 end",
  "end",
  "local out = { ok }",
  "for i = 1, n do",
  "  local rate, burst = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])",
  "  if ok == 1 and debts[i] <= burst then",
  "    redis.call('SET', KEYS[i], string.format('%.17g', marks[i]), 'PX', math.ceil(debts[i] / rate * 1000) + 1)",
  "  end",
  "  out[i + 1] = string.format('%.17g', debts[i])",
  "end",
  "return out",
].join("\n");

const conf = policy.ratelimit.redis;
/** Budgets count in Redis. */
export const clusterEnabled = policy.ratelimit.store === "redis" && conf !== undefined;
/** While Redis fails, each node's share of every budget. */
export const clusterShare = conf === undefined ? 1 : 1 / conf.nodes;
const password = conf === undefined ? undefined : conf.password_env !== undefined ? os.getenv(conf.password_env) : conf.password;

let redisModule: RedisModule | undefined;
let sha: string | undefined;
/** After a failure the worker counts locally; at `downUntil` one request probes Redis again. */
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

/**
 * True when budgets go to Redis for this request: configured, and not backing off a failure.
 * While backing off, one request per `retry_s` probes (the others keep counting locally), so a
 * Redis that is down sees one try per worker per interval, not one per request.
 */
export function clusterReady(): boolean {
  if (!clusterEnabled) return false;
  if (!down) return true;
  const t = ngx.now();
  if (t < downUntil) return false;
  downUntil = t + conf!.retry_s;
  return true;
}

function fail(msg: string): LuaMultiReturn<[undefined, number]> {
  down = true;
  downUntil = ngx.now() + conf!.retry_s;
  countSoon("rf\tfailed");
  setGauge("ru", 0);
  warnOnce(msg);
  return $multi(undefined, clusterShare);
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

/** Scratch lists, reused: the budgets that apply, and the script's KEYS then ARGV. */
const used: Budget[] = [];
const argv: (string | number)[] = [];

/** The script's reply, or the error. Loads it once per worker, and again after a Redis restart. */
function run(red: Redis, n: number, count: number): LuaMultiReturn<[unknown, string | undefined]> {
  if (sha === undefined) {
    const [s, lerr] = red.script("load", SCRIPT);
    if (typeof s !== "string") return $multi(undefined, "script load: " + (lerr ?? "bad reply"));
    sha = s;
  }
  const [res, err] = red.evalsha(sha, n, ...unpack(argv, 1, count));
  if (err === undefined || string.find(err, "NOSCRIPT", 1, true)[0] === undefined) return $multi(res, err);
  sha = undefined;
  return red.eval(SCRIPT, n, ...unpack(argv, 1, count));
}

/**
 * The request against the cluster's buckets: its verdict, or (undefined, share) when Redis
 * failed and the caller must count locally at that share.
 */
export function clusterSpend(budgets: readonly Budget[], st: RequestState, cost: number, klass: string): LuaMultiReturn<[Verdict, undefined] | [undefined, number]> {
  let n = 0;
  for (let i = 0; i < budgets.length; i++) {
    const b = budgets[i]!;
    if (b.classes !== undefined && b.classes.get(klass as never) !== true) continue;
    const key = keyOf(b, st.id, klass);
    if (key === undefined) continue;
    if (cost > b.burst) {
      countSoon(b.metric + (b.shadow ? "shadow_too_costly" : "too_costly"));
      if (!b.shadow) return $multi(tooCostly(b, cost, b.burst), undefined);
      continue;
    }
    used[n] = b;
    argv[n] = key;
    n = n + 1;
  }
  if (n === 0) return $multi(undefined, undefined);
  argv[n] = cost;
  for (let i = 0; i < n; i++) {
    const b = used[i]!;
    argv[n + 3 * i + 1] = b.rate;
    argv[n + 3 * i + 2] = b.burst;
    argv[n + 3 * i + 3] = b.shadow ? "1" : "0";
  }
  const [red, cerr] = connect();
  if (red === undefined) return fail(cerr);
  const [res, err] = run(red, n, 4 * n + 1);
  if (err !== undefined || type(res) !== "table") {
    red.close();
    return fail(err ?? "bad reply");
  }
  red.set_keepalive(conf!.idle_ms, conf!.pool_size);
  if (down) {
    down = false;
    ngx.log(ngx.WARN, "fhir-edge: cluster rate limits: Redis answers again; budgets count in Redis");
  }
  setGauge("ru", 1);
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
        countSoon(b.metric + "shadow_refused");
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
    countSoon(b.metric + "admitted");
    const left = b.burst - debt;
    noteLowest(b.gauge, left);
    if (tight === undefined || left < tightLeft) {
      tight = b;
      tightLeft = left;
      tightDebt = debt;
    }
  }
  if (refused !== undefined) {
    countSoon(refused.metric + "refused");
    setHeaders(refused, tightDebt, refused.burst, refused.rate);
    return $multi(throttled(refused, wait), undefined);
  }
  if (tight !== undefined) setHeaders(tight, tightDebt, tight.burst, tight.rate);
  return $multi(undefined, undefined);
}
