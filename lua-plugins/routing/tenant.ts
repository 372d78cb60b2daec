/**
 * Tenant resolution and FHIR base matching. Pure over the policy tables it is given, so it is
 * tested under plain LuaJIT with hand-made policies.
 *
 * Precedence is the policy's `resolution.order` (default: claim, host, path, header); the first
 * mode that names a tenant wins. The claim mode needs an identity, so `resolve` takes the claim
 * value as an argument (undefined until the identity plugin provides one). A later mode never
 * overrides an earlier one, and the path must still sit under the chosen tenant's base: a
 * request whose host says acme and whose path says /globex is a 404, never a silent switch.
 */
import type { PolicyIR, ResolutionMode, TenantIR } from "../generated/policy";

const find = string.find;
const sub = string.sub;
const lower = string.lower;

export interface TenantIndex {
  readonly order: readonly ResolutionMode[];
  readonly byId: LuaTable<string, TenantIR>;
  readonly byHost: LuaTable<string, TenantIR>;
  readonly byHeader: LuaTable<string, TenantIR>;
  /** Longest prefix first, so /acme-eu wins over /acme. */
  readonly prefixes: readonly TenantIR[];
}

export function buildIndex(policy: Pick<PolicyIR, "resolution" | "tenants">): TenantIndex {
  const byId = new LuaTable<string, TenantIR>();
  const byHost = new LuaTable<string, TenantIR>();
  const byHeader = new LuaTable<string, TenantIR>();
  const prefixes: TenantIR[] = [];
  for (const t of policy.tenants) {
    byId.set(t.id, t);
    for (const h of t.hosts) byHost.set(lower(h), t);
    if (t.header_value !== undefined) byHeader.set(t.header_value, t);
    if (t.path_prefix !== undefined) prefixes.push(t);
  }
  table.sort(prefixes, (a, b) => a.path_prefix!.length > b.path_prefix!.length);
  return { order: policy.resolution.order, byId, byHost, byHeader, prefixes };
}

/** True when `path` is `prefix` or starts with `prefix/`. */
export function underPrefix(path: string, prefix: string): boolean {
  const n = prefix.length;
  if (sub(path, 1, n) !== prefix) return false;
  const next = sub(path, n + 1, n + 1);
  return next === "" || next === "/";
}

/** Host header without port, lower-cased; undefined when absent or malformed. */
export function normalizeHost(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const [name] = string.match(host, "^([%w%.%-]+):?%d*$");
  if (name === undefined || name.length > 253) return undefined;
  return lower(name);
}

export type ResolveResult = LuaMultiReturn<[TenantIR, ResolutionMode] | [undefined, undefined]>;

export function resolve(
  index: TenantIndex,
  claim: string | undefined,
  host: string | undefined,
  path: string,
  header: string | undefined,
): ResolveResult {
  for (const mode of index.order) {
    let t: TenantIR | undefined;
    if (mode === "claim") {
      if (claim !== undefined) t = index.byId.get(claim);
    } else if (mode === "host") {
      if (host !== undefined) t = index.byHost.get(host);
    } else if (mode === "path") {
      for (const p of index.prefixes) {
        if (underPrefix(path, p.path_prefix!)) {
          t = p;
          break;
        }
      }
    } else if (header !== undefined) {
      t = index.byHeader.get(header);
    }
    if (t !== undefined) return $multi(t, mode);
  }
  return $multi(undefined, undefined);
}

/**
 * The FHIR-relative path ("" or "/..."), once the tenant's prefix (when resolved by path), its
 * FHIR base and an optional version segment are removed; undefined when the path is not under
 * the tenant's base.
 */
export function fhirPath(tenant: TenantIR, mode: ResolutionMode, path: string): string | undefined {
  let rest = path;
  if (mode === "path") rest = sub(rest, tenant.path_prefix!.length + 1);
  const base = tenant.fhir_base;
  if (base !== "" && base !== "/") {
    if (!underPrefix(rest, base)) return undefined;
    rest = sub(rest, base.length + 1);
  }
  for (const v of tenant.fhir_versions) {
    if (underPrefix(rest, "/" + v)) return sub(rest, v.length + 2);
  }
  return rest;
}
