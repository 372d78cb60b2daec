/**
 * init_by_lua and init_worker_by_lua. Loading every hot module in the master means a policy
 * that cannot load fails `nginx -t` (and so a reload is refused) instead of failing requests.
 */
import "../core/gateway";
import "./access";
import "./header_filter";
import "./log";
import "./errors";
import "./admin";

export function init(this: void): void {
  // Loading happens through the imports above; nothing else to do once they resolved.
}

export function init_worker(this: void): void {
  // Nothing per worker yet; timers for token caches and audit flushing start here later.
}
