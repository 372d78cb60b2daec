/**
 * init_by_lua and init_worker_by_lua. Loading every hot module in the master means a policy
 * that cannot load fails `nginx -t` (and so a reload is refused) instead of failing requests.
 */
import "../core/gateway";
import "./access";
import "./log";
import "./errors";
import "./admin";
import "./floor";
import "./cache";
import "./write";
import { flushSoon, FLUSH_EVERY } from "../metrics/metrics";
import { syncEvery } from "../ratelimit/redis";
import { syncNow } from "../ratelimit/sync";
import { clustered, SYNC_EVERY, syncGenerations } from "../cache/cluster";
import { start as startAudit, stop as stopAudit } from "../audit/writer";
import { startShipping } from "../audit/ship";

export function init(this: void): void {
  // Loading happens through the imports above; nothing else to do once they resolved.
}

/**
 * LuaJIT's defaults, but for maxirconst (500 constants per trace). Measured in the gateway's
 * worker under a mixed burst (test/integration/gateway/jit-traces): with defaults no root trace
 * aborts, the largest trace has under 800 IR instructions (maxrecord 4000), at most ~100 exits
 * (maxsnap 500) and ~27 side traces per root (maxside 100), but 9-16 side traces per run abort
 * "trace too long" on constants (classify, gateway, the steps) and are left to the interpreter;
 * with maxirconst=2000 none do. The earlier maxside=200 only let a side-trace chain grow twice
 * as long (the lualib SparseArray chain reached 400 traces), so it is back at the default.
 */
const JIT_LIMITS = ["maxirconst=2000"];

export function init_worker(this: void): void {
  (jit.opt as { start(this: void, ...opts: string[]): void }).start(...JIT_LIMITS);
  ngx.timer.every(FLUSH_EVERY, flushSoon);
  if (syncEvery !== undefined) ngx.timer.every(syncEvery, syncNow);
  // The generations dict is the node's: one worker keeps it in step with Redis.
  if (clustered && ngx.worker.id() === 0) {
    ngx.timer.at(0, syncGenerations);
    ngx.timer.every(SYNC_EVERY, syncGenerations);
  }
  startAudit();
  startShipping();
}

/** exit_worker_by_lua: the audit buffer is written and the worker's stream closed. */
export function exit_worker(this: void): void {
  stopAudit();
}
