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

export function init(this: void): void {
  // Loading happens through the imports above; nothing else to do once they resolved.
}

/**
 * LuaJIT's default trace limits (maxrecord=4000 IR instructions, maxirconst=500) are sized for
 * small loops, not a whole access phase: with identity in it the root trace ran "too long" and
 * aborted, leaving the request path to the interpreter (see the bench's jit.v check).
 */
const JIT_LIMITS = ["maxtrace=2000", "maxrecord=16000", "maxirconst=2000", "maxsnap=2000", "maxside=200", "maxmcode=2048"];

export function init_worker(this: void): void {
  (jit.opt as { start(this: void, ...opts: string[]): void }).start(...JIT_LIMITS);
}
