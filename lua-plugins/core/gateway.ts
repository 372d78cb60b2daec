/**
 * Per-bundle state built once in init_by_lua (the master), shared by every worker through fork:
 * the tenant index and the compiled route tables. Built from `generated/policy`, so a reload
 * (new bundle, new lua_package_path) rebuilds it.
 */
import * as policy from "../generated/policy";
import type { RouteIR, TenantIR } from "../generated/policy";
import * as fhir from "../generated/fhir_r4";
import { buildIndex, type TenantIndex } from "../routing/tenant";
import type { Classification } from "../fhir/classify";

export interface CompiledRoute {
  readonly id: string;
  readonly deny: boolean;
  /** Cost tokens of matching requests, instead of the cost model's. */
  readonly cost: number | undefined;
  readonly interactions: LuaTable<string, boolean> | undefined;
  readonly types: LuaTable<string, boolean> | undefined;
  readonly operations: LuaTable<string, boolean> | undefined;
  readonly keep_authorization: boolean;
  /** Seconds a cached token validation may serve matching requests; undefined: by interaction. */
  readonly token_max_age: number | undefined;
  /** Route override of the tenant's authorization mode. */
  readonly shadow: boolean | undefined;
}

function toSet(list: readonly string[] | undefined): LuaTable<string, boolean> | undefined {
  if (list === undefined) return undefined;
  const s = new LuaTable<string, boolean>();
  for (const v of list) s.set(v, true);
  return s;
}

function compileRoutes(routes: readonly RouteIR[]): CompiledRoute[] {
  const out: CompiledRoute[] = [];
  for (const r of routes) {
    out.push({
      id: r.id,
      deny: r.action === "deny",
      cost: r.cost,
      interactions: toSet(r.match.interactions),
      types: toSet(r.match.resource_types),
      operations: toSet(r.match.operations),
      keep_authorization: r.keep_authorization,
      shadow: r.authorization === undefined ? undefined : r.authorization === "shadow",
      token_max_age: r.token_cache_class === undefined ? undefined : r.token_cache_class === "long" ? policy.token_cache.long_s : policy.token_cache.short_s,
    });
  }
  return out;
}

/** nginx variable name for a request header: `X-Tenant` -> `http_x_tenant`. */
function headerVar(name: string): `http_${string}` {
  const [v] = string.gsub(string.lower(name), "-", "_");
  return `http_${v}`;
}

/** The tenant header's variable, when the policy resolves tenants by header at all (else it is never read). */
function tenantHeader(): `http_${string}` | undefined {
  let byHeader = false;
  for (const m of policy.resolution.order) if (m === "header") byHeader = true;
  let named = false;
  for (const t of policy.tenants) if (t.header_value !== undefined) named = true;
  return byHeader && named ? headerVar(policy.resolution.header) : undefined;
}

export const version: string = policy.version;
export const resourceTypes: LuaTable<string, boolean> = fhir.resource_types;
export const index: TenantIndex = buildIndex(policy);
export const stripHeaders: readonly string[] = policy.strip_headers;
export const tenantHeaderVar: `http_${string}` | undefined = tenantHeader();
export const maxSeries: number = policy.metrics.max_series;
/** Some tenant caches responses: the log phase then looks at what the cache did. */
export const caching: boolean = policy.cache !== undefined;
/** The token's tenant claim must agree with the resolved tenant when `claim` is in the order. */
export const checkTenantClaim: boolean = (() => {
  for (const m of policy.resolution.order) if (m === "claim") return true;
  return false;
})();

/** Plain reads may use a token validation for the long TTL; writes and searches the short one. */
const LONG_CLASS: Record<string, boolean> = { "read": true, "vread": true, "history-instance": true, "capabilities": true, "smart-configuration": true };
export function tokenMaxAge(interaction: string): number {
  return LONG_CLASS[interaction] === true ? policy.token_cache.long_s : policy.token_cache.short_s;
}

// The Host each upstream expects is the conf's (map $fe_tenant_id $fe_upstream_host).
const routesByTenant = new LuaTable<string, CompiledRoute[]>();
for (const t of policy.tenants) routesByTenant.set(t.id, compileRoutes(t.routes));

function firstMatch(routes: readonly CompiledRoute[], c: Classification): CompiledRoute | undefined {
  for (const r of routes) {
    if (r.interactions !== undefined && r.interactions.get(c.interaction) !== true) continue;
    if (r.types !== undefined && (c.resource_type === undefined || r.types.get(c.resource_type) !== true)) continue;
    if (r.operations !== undefined && (c.operation === undefined || r.operations.get(c.operation) !== true)) continue;
    return r;
  }
  return undefined;
}

/**
 * Most entries a tenant's route memo keeps. Operation names come from clients, so the key space
 * is open; past the cap, lookups still work and just walk the routes.
 */
const MEMO_MAX = 4096;
interface Memo {
  readonly map: LuaTable<string, CompiledRoute | false>;
  size: number;
}
const memos = new LuaTable<string, Memo>();

/**
 * The first route of the tenant that matches, or undefined (allow, default cost). Memoised per
 * worker by (interaction, type, operation): the walk over the routes is a loop, and a loop in
 * the access phase ends its root trace (see the bench's jit.v check).
 */
export function matchRoute(tenant: TenantIR, c: Classification): CompiledRoute | undefined {
  const routes = routesByTenant.get(tenant.id);
  if (routes === undefined || routes.length === 0) return undefined;
  let memo = memos.get(tenant.id);
  if (memo === undefined) {
    memo = { map: new LuaTable<string, CompiledRoute | false>(), size: 0 };
    memos.set(tenant.id, memo);
  }
  const key = c.interaction + "|" + (c.resource_type ?? "") + "|" + (c.operation ?? "");
  const hit = memo.map.get(key);
  if (hit !== undefined) return hit === false ? undefined : hit;
  const r = firstMatch(routes, c);
  if (memo.size < MEMO_MAX) {
    memo.map.set(key, r ?? false);
    memo.size = memo.size + 1;
  }
  return r;
}

/** The cost of a request on the route it matches, when that route sets one (a batch entry's). */
export function routeCost(tenant: TenantIR, c: Classification): number | undefined {
  const r = matchRoute(tenant, c);
  return r === undefined ? undefined : r.cost;
}
