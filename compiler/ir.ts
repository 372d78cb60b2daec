/**
 * The IR: the only thing the Lua runtime knows about a policy (docs/internals.md). Plain JSON,
 * snake_case so Lua reads it as is, every default applied, nothing optional but explicit nulls.
 */
import { BUILTIN_STRIP_HEADERS, DEFAULTS, type CostClass, type PolicyInput, type ResolutionMode, type RouteProps, type TenantProps } from "../policy-dsl/index.ts";

export interface PolicyIR {
  ir_version: 1;
  /** Bundle version (sha256 hex), filled by the bundler; "" before that. */
  version: string;
  name: string;
  resolution: { order: ResolutionMode[]; header: string; claim: string };
  strip_headers: string[];
  request_id: { header: string; pattern: string };
  limits: { max_body_bytes: number };
  metrics: { max_series: number };
  tenants: TenantIR[];
}

export interface TenantIR {
  id: string;
  hosts: string[];
  path_prefix: string | null;
  header_value: string | null;
  fhir_base: string;
  fhir_versions: string[];
  upstream: UpstreamIR;
  routes: RouteIR[];
}

export interface UpstreamIR {
  name: string;
  scheme: "http" | "https";
  host: string;
  port: number;
  base_path: string;
  keepalive: number;
  connect_timeout_ms: number;
  read_timeout_ms: number;
}

export interface RouteIR {
  id: string;
  match: { interactions: string[] | null; resource_types: string[] | null; operations: string[] | null };
  action: "allow" | "deny";
  cost: CostClass | null;
}

function lowerUpstream(t: TenantProps): UpstreamIR {
  const u = new URL(t.upstream.url);
  const scheme = u.protocol === "https:" ? "https" : "http";
  const path = u.pathname.replace(/\/+$/, "");
  return {
    name: `fe_up_${t.id}`,
    scheme,
    host: u.hostname.toLowerCase(),
    port: u.port === "" ? (scheme === "https" ? 443 : 80) : Number(u.port),
    base_path: path,
    keepalive: t.upstream.keepalive ?? DEFAULTS.upstream.keepalive,
    connect_timeout_ms: (t.upstream.connectTimeout ?? DEFAULTS.upstream.connectTimeout).ms,
    read_timeout_ms: (t.upstream.readTimeout ?? DEFAULTS.upstream.readTimeout).ms,
  };
}

function lowerRoute(r: RouteProps): RouteIR {
  return {
    id: r.id,
    match: {
      interactions: r.match.interactions === undefined ? null : [...r.match.interactions],
      resource_types: r.match.resourceTypes === undefined ? null : [...r.match.resourceTypes],
      operations: r.match.operations === undefined ? null : [...r.match.operations],
    },
    action: r.action ?? DEFAULTS.routeAction,
    cost: r.cost ?? null,
  };
}

function lowerTenant(t: TenantProps): TenantIR {
  return {
    id: t.id,
    hosts: (t.hosts ?? []).map((h) => h.toLowerCase()),
    path_prefix: t.pathPrefix ?? null,
    header_value: t.headerValue ?? null,
    fhir_base: t.fhirBase ?? DEFAULTS.fhirBase,
    fhir_versions: [...(t.fhirVersions ?? [])],
    upstream: lowerUpstream(t),
    routes: (t.routes ?? []).map(lowerRoute),
  };
}

/** Lowers a policy that passed validation; on an unvalidated one it may throw. */
export function lowerPolicy(p: PolicyInput): PolicyIR {
  const strip = new Set<string>(BUILTIN_STRIP_HEADERS);
  for (const h of p.stripHeaders ?? []) strip.add(h.toLowerCase());
  return {
    ir_version: 1,
    version: "",
    name: p.name,
    resolution: {
      order: [...(p.resolution?.order ?? DEFAULTS.resolution.order)],
      header: p.resolution?.header ?? DEFAULTS.resolution.header,
      claim: p.resolution?.claim ?? DEFAULTS.resolution.claim,
    },
    strip_headers: [...strip],
    request_id: { header: p.requestId?.header ?? DEFAULTS.requestIdHeader, pattern: DEFAULTS.requestIdPattern },
    limits: { max_body_bytes: (p.limits?.maxBody ?? DEFAULTS.maxBody).bytes },
    metrics: { max_series: p.metrics?.maxSeries ?? DEFAULTS.maxSeries },
    tenants: p.tenants.map(lowerTenant),
  };
}
