/**
 * init_by_lua and init_worker_by_lua. Loading every hot module in the master means a policy
 * that cannot load fails `nginx -t` (and so a reload is refused) instead of failing requests.
 */
import * as cjson from "cjson.safe";
import "../core/gateway";
import "./access";
import "./header_filter";
import "./log";
import "./errors";
import "./admin";

export function init(this: void): void {
  cjson.encode_empty_table_as_object(false);
}

export function init_worker(this: void): void {
  // Nothing per worker yet; timers for token caches and audit flushing start here later.
}
