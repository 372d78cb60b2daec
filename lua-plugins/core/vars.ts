/**
 * The per-request nginx variables that the Lua phases and nginx.conf share, declared once.
 * The Lua side reads and writes them through `ngx.var`, typed from this list (types/ngx.d.ts),
 * and compiler/emit/gateway-conf.ts declares them and names them in directives through `FeVar`, so a
 * misspelt variable fails to compile on either side.
 *
 * Plain data on purpose: this module is imported by Node (the conf builder) as well as compiled
 * by TSTL.
 *
 * - `set`: declared in the gateway location with `set $name ""` and written by Lua (a `set`
 *   variable survives the internal redirect to the error page, where ngx.ctx does not);
 * - `map`: computed by nginx itself from request headers or from another variable, in C, when
 *   first read; Lua only reads these.
 */
export const FE_VARS = {
  /** The client's X-Request-ID when it is 8-128 of [A-Za-z0-9._:-], else nginx's $request_id. */
  fe_request_id: "map",
  /** W3C traceparent sent upstream: the client's trace and flags with a new parent id, or a new trace. */
  fe_traceparent: "map",
  /** The first 16 hex digits of $request_id: the gateway's span id. */
  fe_span_id: "map",
  /** "1" when the request has a body (a Content-Length above 0, or chunked), else empty. */
  fe_has_body: "map",
  /** The resolved tenant's id; written by the access phase, and it selects the upstream below. */
  fe_tenant_id: "set",
  /** The tenant's upstream block (`fe_up_<tenant>`), its scheme and the Host it expects. */
  fe_upstream: "map",
  fe_upstream_scheme: "map",
  fe_upstream_host: "map",
  /** Path and query sent upstream (the tenant's base path + the FHIR path + the query). */
  fe_upstream_uri: "set",
  /** tenant \t interaction \t resource type, for the log phase's metrics. */
  fe_labels: "set",
  /** Identity headers for the upstream, from the validated token. */
  fe_user_id: "set",
  fe_client_id: "set",
  fe_patient: "set",
  /** The break-glass reason code of an allowed break-glass request (breakglass/step); empty otherwise. */
  fe_break_glass: "set",
  /** The client's Authorization, only on routes with keepAuthorization. */
  fe_authorization: "set",
  /** RateLimit and RateLimit-Policy of the tightest budget that applied (ratelimit/); empty adds nothing. */
  fe_ratelimit: "set",
  fe_ratelimit_policy: "set",
  /**
   * The response cache (lua-plugins/cache). `fe_cache`: "" on a tenant or type without a cache,
   * "B" when a cached route's request bypasses it, "C" when it goes through a cache location,
   * "=<status>" for a checked read (the status its fetch reported). X-Cache is made from it.
   */
  fe_cache: "set",
  /** SHA-256 (hex) of the key material: proxy_cache_key. */
  fe_cache_key: "set",
  /** The Accept the cache asks the upstream with: the representation in the key. */
  fe_cache_accept: "set",
  /** Space-separated gen keys a successful write bumps (cache/gen), for the write location's header filter. */
  fe_cache_bump: "set",
  /** `<rate>\t<cost>\t<bucket key>` of the miss budget, spent in the log phase when the cache went upstream. */
  fe_cache_miss: "set",
  /** X-Cache: HIT, MISS, EXPIRED, STALE or BYPASS on a cached route; empty adds nothing. */
  fe_x_cache: "map",
  /** "1" when the upstream's response may not be stored: its Cache-Control or Content-Type (phases/cache). */
  fe_cache_nostore: "set",
  /** Non-empty when the upstream's response is too large to store, or of unknown length. */
  fe_cache_size_off: "map",
  /** The audit event's pipeline half (audit/event), or "-" once a durable write has recorded it. */
  fe_audit: "set",
  /** Given values per subrequest (capture's `vars`) in the issuer locations. */
  fe_idp_auth: "set",
  fe_idp_ctype: "set",
} as const;

export type FeVar = keyof typeof FE_VARS;

/** The variables Lua may write: the `set` ones. */
export type FeSetVar = { [K in FeVar]: (typeof FE_VARS)[K] extends "set" ? K : never }[FeVar];
