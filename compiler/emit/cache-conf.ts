/**
 * The response cache's part of the conf (lua-plugins/cache/README.md): one proxy_cache zone,
 * one internal location per distinct freshness the tenants' types use, and what keeps a
 * response out of the cache (a size map in C, a header filter for the headers nginx 1.22's
 * variables see only the first of). Nothing here exists when no tenant caches.
 */
import type { CacheIR, CacheLocationIR, PolicyIR } from "../ir.ts";
import type { FeVar } from "../../lua-plugins/core/vars.ts";
import { block, d, lua, mapEntry, type ConfNode } from "../../nginx/model.ts";

function v(name: FeVar): string {
  return `$${name}`;
}

/**
 * A regex that matches a decimal string (no leading zeros) greater than `n`: a longer one, or
 * one of the same length that is larger at the first digit where they differ.
 */
export function greaterThanPattern(n: number): string {
  const s = String(Math.floor(n));
  const alts = [`[1-9][0-9]{${s.length},}`];
  for (let i = 0; i < s.length; i++) {
    const digit = Number(s[i]);
    if (digit === 9) continue;
    const rest = s.length - i - 1;
    alts.push(`${s.slice(0, i)}[${digit + 1}-9]${rest > 0 ? `[0-9]{${rest}}` : ""}`);
  }
  return `~^(${alts.join("|")})$`;
}

export function cacheMaps(ir: PolicyIR): ConfNode[] {
  const c = ir.cache;
  if (c === null) return [];
  return [
    // X-Cache, from what the access phase decided and what the cache did. UPDATING is a stale
    // entry served while another request refreshes it; REVALIDATED is a fresh one.
    block("map", [`${v("fe_cache")}:$upstream_cache_status`, v("fe_x_cache")], [
      mapEntry("~^C:(HIT|MISS|EXPIRED|STALE|BYPASS)$", "$1"),
      mapEntry("C:UPDATING", "STALE"),
      mapEntry("C:REVALIDATED", "HIT"),
      mapEntry("C:", "MISS"),
      mapEntry("~^[BP]:", "BYPASS"),
      mapEntry("~^=(?<fe_xc>HIT|MISS|EXPIRED|STALE|BYPASS):", "$fe_xc"),
      d("default", ""),
    ]),
    // Without a Content-Length the size is unknown until the body is stored: not stored.
    block("map", ["$upstream_http_content_length", v("fe_cache_size_off")], [mapEntry("", "1"), mapEntry("~^0[0-9]", "1"), mapEntry(greaterThanPattern(c.max_entry_bytes), "1"), d("default", "")]),
  ];
}

export function cacheHttp(ir: PolicyIR, stateDir: string): ConfNode[] {
  const c = ir.cache;
  if (c === null) return [];
  return [
    d("proxy_cache_path", `${stateDir}/cache`, "levels=1:2", `keys_zone=fe_cache:${Math.max(1, Math.ceil(c.keys_zone_bytes / 1024))}k`, `max_size=${Math.max(1, Math.ceil(c.max_size_bytes / 1024))}k`, `inactive=${c.inactive_s}s`, "use_temp_path=off"),
    // Generation counters per (tenant, type) (cache/gen): tenants x cached types, a few KB.
    d("lua_shared_dict", "fe_cache_gen", "1m"),
    // Hit-for-pass marks of keys whose responses are not stored (phases/cache): LRU at the limit.
    d("lua_shared_dict", "fe_cache_pass", "2m"),
  ];
}

function cacheDirectives(c: CacheIR, l: CacheLocationIR): ConfNode[] {
  return [
    d("proxy_cache", "fe_cache"),
    d("proxy_cache_key", v("fe_cache_key")),
    d("proxy_cache_methods", "GET"),
    d("proxy_cache_valid", 200, `${l.ttl_s}s`),
    ...(l.not_found_s !== null ? [d("proxy_cache_valid", 404, `${l.not_found_s}s`)] : []),
    d("proxy_cache_lock", "on"),
    d("proxy_cache_lock_timeout", `${c.lock_timeout_ms}ms`),
    d("proxy_cache_lock_age", `${c.lock_timeout_ms}ms`),
    // The policy's TTL is the freshness: the upstream's own expiry headers do not lengthen
    // it, and X-Accel-* headers never steer the gateway. no-store, private and no-cache in any
    // Cache-Control header, and the type, are judged by the header filter (cache/store), which
    // runs before nginx reads proxy_no_cache; Set-Cookie by nginx itself (not stored).
    d("proxy_ignore_headers", "Cache-Control", "Expires", ...IGNORED_ALWAYS),
    d("proxy_no_cache", v("fe_cache_nostore"), v("fe_cache_size_off")),
    ...(l.stale
      ? [d("proxy_cache_use_stale", "error", "timeout", "updating", "http_500", "http_502", "http_503", "http_504"), d("proxy_cache_background_update", "on")]
      : [d("proxy_cache_use_stale", "off")]),
  ];
}

/** Upstream headers that never steer the gateway, on every proxied location. */
export const IGNORED_ALWAYS = ["X-Accel-Redirect", "X-Accel-Expires", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"];

/**
 * What the cache locations send upstream: none of the client's headers (a Cookie, an
 * X-Forwarded-Host or an X-HTTP-Method-Override would make an answer the key does not name),
 * only the gateway's own from the shared proxying, the representation in the key as Accept,
 * and no Accept-Encoding, so what is stored is what any requester of the key can read.
 */
function cacheProxy(proxy: readonly ConfNode[]): ConfNode[] {
  return [
    ...proxy.filter((n) => !(n.kind === "directive" && n.name === "proxy_ignore_headers")),
    d("proxy_pass_request_headers", "off"),
    d("proxy_set_header", "Accept", v("fe_cache_accept")),
    d("proxy_set_header", "Accept-Encoding", ""),
  ];
}

/**
 * The locations: `/__fe_cache/<n>` (the access phase's ngx.exec), `/__fe_cache/<n>/checked`
 * (a checked read's capture: its header filter reports the cache status to the parent, which
 * add_header cannot, since it skips subrequests), and `/__fe_write` (a write on a caching
 * tenant: its header filter bumps the generations before the client sees the response).
 */
export function cacheLocations(ir: PolicyIR, proxy: readonly ConfNode[]): ConfNode[] {
  const c = ir.cache;
  if (c === null) return [];
  const out: ConfNode[] = [];
  for (const l of c.locations) {
    out.push(block("location", ["=", l.loc], [d("internal"), ...cacheProxy(proxy), ...cacheDirectives(c, l), lua("header_filter_by_lua_block", `require("phases.cache").stored(${l.not_found_s !== null})`)]));
    out.push(block("location", ["=", `${l.loc}/checked`], [d("internal"), ...cacheProxy(proxy), ...cacheDirectives(c, l), lua("header_filter_by_lua_block", `require("phases.cache").checked(${l.not_found_s !== null})`)]));
  }
  out.push(writeLocation(proxy));
  return out;
}

/**
 * `/__fe_write`: writes of a caching tenant (the header filter bumps the generations) and of
 * the audit's `durable` classes (it writes their event), before the client sees the response.
 */
export function writeLocation(proxy: readonly ConfNode[]): ConfNode {
  return block("location", ["=", "/__fe_write"], [d("internal"), ...proxy, lua("header_filter_by_lua_block", 'require("phases.write").headers()')]);
}
