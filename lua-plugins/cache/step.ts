/**
 * Pipeline steps of the response cache (README.md): after authorization, the route's verdict,
 * the cost tokens and the write checks, because who may share an entry depends on the
 * authorization context, and nothing refused may be answered from the cache.
 *
 * - `planCache` decides: a cacheable read goes through a cache location under its key; a
 *   write on a caching tenant goes through the write location, which bumps the generations
 *   of what it changes; anything else on a cached type says X-Cache: BYPASS.
 * - `proxyVia`, the last step, sends the request there (ngx.exec). A checked read is sent by
 *   scopes/fetch instead, through the cache location's `/checked` twin.
 */
import * as gw from "../core/gateway";
import type { RequestState, Verdict } from "../core/request";
import type { Classification } from "../fhir/classify";
import type { TenantCacheIR, TenantIR } from "../generated/policy";
import { heldPatient } from "../scopes/authorize";
import { ACCEPT, cacheKey, formatOf, readsOtherTypes, representation } from "./key";
import { ALL_TYPES, genKey, generation } from "./gen";
import { clustered } from "./cluster";
import { debtOf, waitFor, type BucketDict } from "../ratelimit/bucket";
import { count, keyOf, missByTenant, ORIGIN, type Budget } from "../ratelimit/budgets";
import { throttled } from "../ratelimit/verdict";

const ngxVar = ngx.var;
const encode = ngx.encode_base64;
const find = string.find;

/** What the cache stores: reads by id or version, type searches, the CapabilityStatement. */
const CACHEABLE: Record<string, boolean> = { "read": true, "vread": true, "search-type": true, "capabilities": true };
const WRITES: Record<string, boolean> = { "create": true, "update": true, "patch": true, "delete": true };

/** The name a cached type has in the policy (`metadata` for the CapabilityStatement). */
function cacheType(c: Classification): string | undefined {
  if (c.interaction === "capabilities") return "metadata";
  return c.resource_type;
}

/** The tenant's cache entry for the request's type: its location and whether it is shared; undefined when the type is not cached. */
function entryOf(cache: TenantCacheIR, c: Classification): { readonly loc: string; readonly shared: boolean } | undefined {
  const ctype = cacheType(c);
  return ctype === undefined ? undefined : cache.types.get(ctype);
}

/**
 * Who may share the entry: the whole tenant for a shared type (unless the search reads other
 * types), everyone on an anonymous tenant, the patient when the grant is held to the patient
 * compartment, otherwise the user (the issuer's, with the patient in context, which the
 * upstream is told).
 * Undefined when none of these can be said: no token on a tenant that needs one, or no sub.
 */
function partitionOf(st: RequestState, tenant: TenantIR, c: Classification, shared: boolean, other: boolean): string | undefined {
  if (shared && !other) return "s";
  const id = st.id;
  if (id === undefined) return tenant.anonymous ? "a" : undefined;
  const held = heldPatient(id, c, tenant.compartment_for);
  if (held !== undefined) return "p" + held;
  const sub = id.sub;
  if (sub === undefined) return undefined;
  // The issuer too: two issuers of one tenant may each have a user of the same sub.
  const patient = id.patient;
  return "u" + id.issuer + ":" + tostring(sub.length) + ":" + sub + (patient === undefined ? "" : patient);
}

/** The generations the entry depends on: its type's, and the tenant's when it reads other types. */
function generations(d: SharedDict, tenant: string, type: string, other: boolean): string {
  const own = generation(d, genKey(tenant, type), clustered);
  if (!other) return own;
  return own + "." + generation(d, genKey(tenant, ALL_TYPES), clustered);
}

/**
 * What a successful write makes stale: its type (when the tenant caches it) and the tenant's
 * `*`. A Bundle's entries each name theirs; a write whose type is not known bumps every cached
 * type of the tenant.
 */
function bumpsOf(st: RequestState, tenant: TenantIR, c: Classification): string {
  const types = tenant.cache!.types;
  const all = genKey(tenant.id, ALL_TYPES);
  if (c.interaction === "batch") return bundleBumps(st, tenant, all);
  const t = c.resource_type;
  if (t === undefined) return everyType(tenant, all);
  return types.get(t) === undefined ? all : all + " " + genKey(tenant.id, t);
}

function everyType(tenant: TenantIR, all: string): string {
  let out = all;
  for (const [t] of pairs(tenant.cache!.types)) out = out + " " + genKey(tenant.id, t);
  return out;
}

/** The write entries' types of a batch or transaction (fhir/body decoded it; scopes/bundle checked it). */
function bundleBumps(st: RequestState, tenant: TenantIR, all: string): string {
  const entries = st.doc === undefined ? undefined : st.doc["entry"];
  if (type(entries) !== "table") return all;
  const types = tenant.cache!.types;
  let out = all;
  for (const e of entries as unknown[]) {
    const request = type(e) === "table" ? (e as Record<string, unknown>)["request"] : undefined;
    if (type(request) !== "table") continue;
    const r = request as Record<string, unknown>;
    const method = r["method"];
    const url = r["url"];
    if (method === "GET" || method === "HEAD") continue;
    if (typeof url !== "string") return everyType(tenant, all);
    const [, , t] = find(url, "^/?([A-Z][A-Za-z]*)");
    if (t === undefined) return everyType(tenant, all);
    if (types.get(t as string) !== undefined) out = out + " " + genKey(tenant.id, t as string);
  }
  return out;
}

/**
 * The miss budget's verdict, before the cache is asked: the hits cost it nothing, but while its
 * bucket cannot pay for one more miss, the client's cacheable requests wait (a 429). What the
 * log phase will spend if the cache goes upstream is left in `$fe_cache_miss`.
 */
function missBudget(st: RequestState, b: Budget, klass: string): Verdict {
  const key = keyOf(b, st.id, klass);
  const cost = st.c!.cost;
  if (key === undefined || cost <= 0) return undefined;
  const d = ngx.shared.fe_ratelimit as unknown as BucketDict | undefined;
  if (d === undefined) return undefined;
  const debt = debtOf(d, key, ngx.now() - ORIGIN, b.rate);
  if (debt + cost > b.burst) {
    // Counted as the other budgets' decisions are (fe_ratelimit_decisions_total); shadow only counts.
    count(b, b.shadow ? "shadow_refused" : "refused");
    if (!b.shadow) return throttled(b, waitFor(debt + cost, b.burst, b.rate));
  }
  ngxVar.fe_cache_miss = tostring(b.rate) + "\t" + tostring(cost) + "\t" + key;
  return undefined;
}

const BYPASS = "B";
/** Around the cache for a hit-for-pass key; the miss budget pays, as for a miss. */
const PASS = "P";
/**
 * How long a key whose response nginx would not store goes around the cache (phases/cache
 * marks it): long enough that a stampede of such requests does not queue on the cache lock,
 * short enough that a response that becomes storable is cached soon.
 */
export const PASS_SECONDS = 10;
const WRITE_LOCATION = "/__fe_write";
const THROUGH = "C";

export function planCache(st: RequestState): Verdict {
  const tenant = st.tenant;
  const c = st.c;
  if (tenant === undefined || c === undefined) return undefined;
  const cache = tenant.cache;
  if (cache === undefined) return undefined;
  const entry = entryOf(cache, c);
  // A cached type: every response says what the cache did.
  if (entry !== undefined) ngxVar.fe_cache = BYPASS;
  if (WRITES[c.interaction] === true || c.interaction === "batch" || (st.method === "POST" && c.interaction !== "search-type")) {
    ngxVar.fe_cache_bump = bumpsOf(st, tenant, c);
    st.via = WRITE_LOCATION;
    return undefined;
  }
  if (entry === undefined) return undefined;
  // A break-glass read reaches past what the token normally sees: never served from, or stored under, its partition.
  if (st.method !== "GET" || CACHEABLE[c.interaction] !== true || st.shadow || st.glassBroken) return undefined;
  const route = st.route;
  // The upstream sees the client's token on such a route, and may answer by it.
  if (route !== undefined && route.keep_authorization) return undefined;
  // Prefer (handling=strict, return=...) may change what a search returns.
  if (ngxVar.http_prefer !== undefined) return undefined;
  const args = st.args;
  const repr = representation(formatOf(args), ngxVar.http_accept);
  if (repr === undefined) return undefined;
  const other = c.interaction === "search-type" && readsOtherTypes(args);
  const partition = partitionOf(st, tenant, c, entry.shared, other);
  if (partition === undefined) return undefined;
  const d = ngx.shared.fe_cache_gen;
  if (d === undefined) return undefined;
  const miss = missByTenant.get(tenant.id);
  if (miss !== undefined) {
    const v = missBudget(st, miss, c.interaction === "search-type" ? "search" : "read");
    if (v !== undefined) return v;
  }
  const key = encode(cacheKey(gw.version, tenant.id, partition, generations(d, tenant.id, cacheType(c)!, other), st.method, st.upstream, repr));
  const pass = ngx.shared.fe_cache_pass;
  if (pass !== undefined) {
    const [marked] = pass.get(key);
    if (marked !== undefined) {
      ngxVar.fe_cache = PASS;
      return undefined;
    }
  }
  ngxVar.fe_cache_key = key;
  ngxVar.fe_cache_accept = ACCEPT[repr];
  ngxVar.fe_cache = THROUGH;
  st.via = st.check === undefined ? entry.loc : entry.loc + "/checked";
  return undefined;
}

/** A refused request of a cached type says X-Cache: BYPASS too, whichever step refused it. */
export function markRefused(st: RequestState): void {
  const tenant = st.tenant;
  const c = st.c;
  if (tenant === undefined || c === undefined || tenant.cache === undefined) return;
  if (entryOf(tenant.cache, c) !== undefined) ngxVar.fe_cache = BYPASS;
}

/** The last step: on to the cache or write location, when planCache chose one (a checked read has been sent already). */
export function proxyVia(st: RequestState): Verdict {
  const via = st.via;
  if (via === undefined) return undefined;
  return ngx.exec(via);
}
