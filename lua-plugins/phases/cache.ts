/**
 * header_filter_by_lua of the cache's internal locations (nginx/cache-conf.ts).
 *
 * - `stored`: whether what the upstream answered may be stored (cache/store).
 * - `checked`: the same, and a checked read's fetch through the cache reports what the cache
 *   did to the parent request, which sends the response itself (scopes/fetch) and says X-Cache
 *   from it.
 * - `written`: a successful write bumps the generations of what it changed (cache/gen) here,
 *   before the client gets the response, so a read sent after it cannot hit the old entry.
 */
import { bumpAll } from "../cache/gen";
import { clustered } from "../cache/cluster";
import { CACHE_STATUS } from "../scopes/fetch";
import { isPrivate, isStoredType } from "../cache/store";

const ngxVar = ngx.var;
let lastWarn = 0;

/** What the cache served itself: nothing to decide about storing. */
const FROM_CACHE: Record<string, boolean> = { HIT: true, STALE: true, UPDATING: true, REVALIDATED: true };

/**
 * A response from the upstream that may not be stored (any of its Cache-Control headers says
 * no-store, private or no-cache; the type nginx sends is not FHIR JSON or XML): proxy_no_cache
 * reads `$fe_cache_nostore` after the header filters have run.
 */
function decide(status: string | undefined): void {
  if (status !== undefined && FROM_CACHE[status] === true) return;
  const header = ngx.header;
  if (isPrivate(header["Cache-Control"]) || !isStoredType(header["Content-Type"])) ngxVar.fe_cache_nostore = "1";
}

export function stored(this: void): void {
  decide(ngxVar.upstream_cache_status);
}

export function checked(this: void): void {
  const status = ngxVar.upstream_cache_status;
  decide(status);
  ngx.header[CACHE_STATUS] = status ?? "MISS";
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
