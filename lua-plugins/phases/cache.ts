/**
 * header_filter_by_lua of the cache's internal locations (nginx/cache-conf.ts).
 *
 * - `checked`: a checked read's fetch through the cache reports what the cache did to the
 *   parent request, which sends the response itself (scopes/fetch) and says X-Cache from it.
 * - `written`: a successful write bumps the generations of what it changed (cache/gen) here,
 *   before the client gets the response, so a read sent after it cannot hit the old entry.
 */
import { bumpAll } from "../cache/gen";
import { clustered } from "../cache/cluster";
import { CACHE_STATUS } from "../scopes/fetch";

const ngxVar = ngx.var;
let lastWarn = 0;

export function checked(this: void): void {
  ngx.header[CACHE_STATUS] = ngxVar.upstream_cache_status ?? "MISS";
}

export function written(this: void): void {
  const status = ngx.status;
  if (status < 200 || status >= 300) return;
  const list = ngxVar.fe_cache_bump;
  const d = ngx.shared.fe_cache_gen;
  if (list === undefined || list === "" || d === undefined) return;
  if (bumpAll(d, list, clustered)) return;
  // A counter that cannot be stored would leave old entries reachable: said once per 10 s.
  const now = ngx.now();
  if (now - lastWarn < 10) return;
  lastWarn = now;
  ngx.log(ngx.ERR, "fhir-edge: the cache generation dict is full: a write could not invalidate cached reads (raise fe_cache_gen)");
}
