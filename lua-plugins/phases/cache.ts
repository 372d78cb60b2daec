/**
 * header_filter_by_lua of the cache's internal locations (compiler/emit/cache-conf.ts).
 *
 * - `stored`: whether what the upstream answered may be stored (cache/store), and the
 *   hit-for-pass mark of a key whose response will not be.
 * - `checked`: the same, and a checked read's fetch through the cache reports what the cache
 *   did to the parent request, which sends the response itself (scopes/fetch) and says X-Cache
 *   from it.
 * - `written`: a successful write bumps the generations of what it changed (cache/gen) here,
 *   before the client gets the response, so a read sent after it cannot hit the old entry.
 */
import { bumpAll } from "../cache/gen";
import { clustered } from "../cache/cluster";
import { CACHE_STATUS } from "../scopes/fetch";
import { isPrivate, isStoredType, storable } from "../cache/store";
import { PASS_SECONDS } from "../cache/step";
import * as policy from "../generated/policy";

const ngxVar = ngx.var;
let lastWarn = 0;

/** What the cache served itself: nothing to decide about storing. */
const FROM_CACHE: Record<string, boolean> = { HIT: true, STALE: true, UPDATING: true, REVALIDATED: true };

const maxEntry = policy.cache === undefined ? 0 : policy.cache.max_entry_bytes;

/**
 * A response from the upstream that may not be stored: any of its Cache-Control headers says
 * no-store, private or no-cache, or the type nginx sends is not FHIR JSON or XML.
 * proxy_no_cache reads `$fe_cache_nostore` after the header filters have run. Whatever nginx
 * will not store, for these reasons or its own (status, Set-Cookie, size), marks the key
 * hit-for-pass for PASS_SECONDS (cache/step then sends its requests around the cache). A 304
 * that nginx made for a client's conditional request says nothing of the response: no mark.
 */
function decide(cacheStatus: string | undefined, notFound: boolean): void {
  if (cacheStatus !== undefined && FROM_CACHE[cacheStatus] === true) return;
  const header = ngx.header;
  let stores = true;
  if (isPrivate(header["Cache-Control"]) || !isStoredType(header["Content-Type"])) {
    ngxVar.fe_cache_nostore = "1";
    stores = false;
  }
  const status = ngx.status;
  if (status === 304) return;
  if (stores && storable(status, notFound, header["Set-Cookie"], header["Content-Length"], maxEntry)) return;
  const key = ngxVar.fe_cache_key;
  const d = ngx.shared.fe_cache_pass;
  if (key !== undefined && key !== "" && d !== undefined) d.set(key, true, PASS_SECONDS);
}

/** The cache location's header filter; `notFound`: the location stores 404s. */
export function stored(this: void, notFound: boolean): void {
  decide(ngxVar.upstream_cache_status, notFound);
}

export function checked(this: void, notFound: boolean): void {
  const status = ngxVar.upstream_cache_status;
  decide(status, notFound);
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
