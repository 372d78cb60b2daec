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
  /** The same prefixes by exact text, for the loop-free lookup of up to 3 segments. */
  readonly byPrefix: LuaTable<string, TenantIR>;
  /** Most segments in any prefix; deeper than 3 falls back to the ordered walk. */
  readonly prefixDepth: number;
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
  const byPrefix = new LuaTable<string, TenantIR>();
  let prefixDepth = 0;
  for (const t of prefixes) {
    byPrefix.set(t.path_prefix!, t);
    const [, slashes] = string.gsub(t.path_prefix!, "/", "");
    if (slashes > prefixDepth) prefixDepth = slashes;
  }
  return { order: policy.resolution.order, byId, byHost, byHeader, prefixes, byPrefix, prefixDepth };
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
  const [name, port] = string.match(host, "^([%w%.%-]+):?(%d*)$");
  if (name === undefined || name.length > 253) return undefined;
  // A port is 1-65535 (":" alone is allowed, as RFC 3986 allows an empty port).
  if (port !== undefined && port !== "" && (port.length > 5 || tonumber(port)! > 65535 || tonumber(port)! < 1)) return undefined;
  return lower(name);
}

export type ResolveResult = LuaMultiReturn<[TenantIR, ResolutionMode] | [undefined, undefined]>;

/** End of the path's segment that starts at `from` (a "/"): the index before the next "/". */
function segmentEnd(path: string, from: number): number {
  const [slash] = find(path, "/", from + 1, true);
  return slash === undefined ? path.length : slash - 1;
}

/** The tenant whose prefix is the longest leading run of whole segments of `path`. */
function byPath(index: TenantIndex, path: string): TenantIR | undefined {
  if (index.prefixDepth > 3) {
    for (const p of index.prefixes) if (underPrefix(path, p.path_prefix!)) return p;
    return undefined;
  }
  if (index.prefixDepth === 0 || sub(path, 1, 1) !== "/") return undefined;
  // Unrolled for up to three segments, longest first: a loop would end the access phase's
  // root trace under LuaJIT.
  const e1 = segmentEnd(path, 1);
  const e2 = e1 < path.length ? segmentEnd(path, e1 + 1) : e1;
  const e3 = e2 < path.length ? segmentEnd(path, e2 + 1) : e2;
  let t: TenantIR | undefined;
  if (index.prefixDepth >= 3 && e3 > e2) t = index.byPrefix.get(sub(path, 1, e3));
  if (t === undefined && index.prefixDepth >= 2 && e2 > e1) t = index.byPrefix.get(sub(path, 1, e2));
  if (t === undefined) t = index.byPrefix.get(sub(path, 1, e1));
  return t;
}

function byMode(index: TenantIndex, mode: ResolutionMode | undefined, claim: string | undefined, host: string | undefined, path: string, header: string | undefined): TenantIR | undefined {
  if (mode === "claim") return claim === undefined ? undefined : index.byId.get(claim);
  if (mode === "host") return host === undefined ? undefined : index.byHost.get(host);
  if (mode === "path") return byPath(index, path);
  if (mode === "header") return header === undefined ? undefined : index.byHeader.get(header);
  return undefined;
}

/** Tries the policy's modes in order (at most the four there are; unrolled, see byPath). */
export function resolve(
  index: TenantIndex,
  claim: string | undefined,
  host: string | undefined,
  path: string,
  header: string | undefined,
): ResolveResult {
  const o = index.order;
  const m1 = o[0];
  const t1 = byMode(index, m1, claim, host, path, header);
  if (t1 !== undefined) return $multi(t1, m1!);
  const m2 = o[1];
  const t2 = byMode(index, m2, claim, host, path, header);
  if (t2 !== undefined) return $multi(t2, m2!);
  const m3 = o[2];
  const t3 = byMode(index, m3, claim, host, path, header);
  if (t3 !== undefined) return $multi(t3, m3!);
  const m4 = o[3];
  const t4 = byMode(index, m4, claim, host, path, header);
  if (t4 !== undefined) return $multi(t4, m4!);
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
  if (tenant.fhir_versions.length === 0 || sub(rest, 1, 1) !== "/") return rest;
  // The version segment, looked up in a set rather than by walking fhir_versions.
  const e = segmentEnd(rest, 1);
  if (versionSet(tenant).get(sub(rest, 2, e)) === true) return sub(rest, e + 1);
  return rest;
}

const versionSets = new LuaTable<TenantIR, LuaTable<string, boolean>>();
function versionSet(t: TenantIR): LuaTable<string, boolean> {
  let s = versionSets.get(t);
  if (s === undefined) {
    s = new LuaTable<string, boolean>();
    for (const v of t.fhir_versions) s.set(v, true);
    versionSets.set(t, s);
  }
  return s;
}
