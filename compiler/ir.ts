/**
 * The IR: the only thing the Lua runtime knows about a policy (docs/internals.md). Plain JSON,
 * snake_case so Lua reads it as is, every default applied, nothing optional but explicit nulls.
 */
import { BUILTIN_STRIP_HEADERS, DEFAULTS, SHARED_TYPES, type BudgetKey, type BudgetProps, type CostProps, type InteractionClass, type IssuerProps, type JwtAlg, type PolicyInput, type ResolutionMode, type RouteProps, type TenantProps, type TokenCacheClass, type ValidationMode, type AuthorizationMode, type AuditProps, type AuditSinkProps } from "../policy-dsl/index.ts";

export interface PolicyIR {
  ir_version: 1;
  /** Bundle version (sha256 hex), filled by the bundler; "" before that. */
  version: string;
  name: string;
  resolution: { order: ResolutionMode[]; header: string; claim: string };
  strip_headers: string[];
  request_id: { header: string; pattern: string };
  limits: { max_body_bytes: number; max_query_params: number };
  ratelimit: RateLimitIR;
  metrics: { max_series: number };
  /** The response cache's storage; null when no tenant caches anything. */
  cache: CacheIR | null;
  /** The audit trail; null without one. Paths are absolute once the bundler has resolved them. */
  audit: AuditIR | null;
  token_cache: { short_s: number; long_s: number; negative_s: number };
  issuers: IssuerIR[];
  /** One internal nginx location per (issuer, origin) the gateway calls; see compiler/emit/gateway-conf. */
  idp_locations: IdpLocationIR[];
  tenants: TenantIR[];
}

/** A URL the gateway calls through an internal location: `loc` + `path` is the subrequest URI. */
export interface EndpointIR {
  loc: string;
  path: string;
}

export interface IdpLocationIR {
  /** `/__fe_idp/<issuer index>-<origin index>` */
  loc: string;
  /** `scheme://host[:port]`, as proxy_pass takes it. */
  origin: string;
  scheme: "http" | "https";
  host: string;
  /** The Host header: host, plus the port when it is not the scheme's default. */
  host_header: string;
  timeout_ms: number;
  /** Only for https. */
  tls: { ca: string; client_cert: string | null; client_key: string | null } | null;
}

export interface IssuerIR {
  id: string;
  issuer: string;
  audiences: string[];
  mode: ValidationMode;
  algs: JwtAlg[];
  skew_s: number;
  timeout_ms: number;
  jwks_refetch_s: number;
  jwks_max_age_s: number;
  patient_claim: string;
  /** The issuer's own origin location; discovered endpoints must live under it. */
  origin_loc: string;
  /** `<issuer path>/.well-known/openid-configuration` under origin_loc. */
  discovery_path: string;
  /** Configured JWKS endpoint; null means discover it. */
  jwks: EndpointIR | null;
  /** Null in jwt mode. `endpoint` null means discover it. */
  introspection: { endpoint: EndpointIR | null; client_id: string; secret_env: string } | null;
}

export interface TenantIR {
  id: string;
  hosts: string[];
  path_prefix: string | null;
  header_value: string | null;
  fhir_base: string;
  fhir_versions: string[];
  upstream: UpstreamIR;
  /** Issuer ids; empty only for an anonymous tenant. */
  issuers: string[];
  anonymous: boolean;
  authorization: AuthorizationMode;
  /** Operation name -> permission letter. */
  operations: Record<string, string>;
  compartment_search: "refuse" | "inject";
  /** Contexts held to the patient compartment besides patient: context -> true. */
  compartment_for: Record<string, boolean>;
  reject_invalid_scopes: boolean;
  routes: RouteIR[];
  /** The policy's cost model with the tenant's overrides applied. */
  costs: CostsIR;
  budgets: BudgetIR[];
  cache: TenantCacheIR | null;
  break_glass: BreakGlassIR | null;
}

export interface BreakGlassIR {
  /** The scope a token must hold. */
  scope: string;
  /** Reason code -> true. */
  reasons: Record<string, boolean>;
  /** The reasons in policy order, for the refusal's message. */
  reason_list: string;
  /** Space-separated scopes a break-glass request also holds; "" for none. */
  scopes: string;
}

export interface CacheIR {
  keys_zone_bytes: number;
  max_size_bytes: number;
  max_entry_bytes: number;
  inactive_s: number;
  lock_timeout_ms: number;
  /** One internal location per distinct (TTL, 404 TTL, stale) that a tenant's type uses. */
  locations: CacheLocationIR[];
}

export interface CacheLocationIR {
  /** `/__fe_cache/<n>`; the checked-read twin is `/__fe_cache/<n>/checked`. */
  loc: string;
  ttl_s: number;
  not_found_s: number | null;
  stale: boolean;
}

export interface TenantCacheIR {
  /** Cached type (or `metadata`) -> its cache location, and whether it is cached tenant-wide. */
  types: Record<string, { loc: string; shared: boolean }>;
  /** Spent only by requests the cache sends to the upstream. */
  miss_budget: BudgetIR | null;
}

export interface AuditIR {
  /** The spool directory; "" until the bundler resolves the default under the state dir. */
  spool_dir: string;
  key_file: string;
  key_id: string;
  /** Ed25519 private key (PEM) for the checkpoints; null: HMAC-SHA256 with key_file. */
  ed25519_key_file: string | null;
  query_values: "omit" | "hmac";
  flush_ms: number;
  batch_events: number;
  batch_bytes: number;
  buffer_bytes: number;
  checkpoint_every: number;
  checkpoint_ms: number;
  max_bytes: number;
  segment_bytes: number;
  at_limit: "fail-closed" | "drop-oldest";
  durable: ("write" | "break-glass")[];
  fsync: boolean;
  sinks: AuditSinkIR[];
}

export type AuditSinkIR = AuditFileSinkIR | AuditHttpSinkIR;

/** A JSONL file sink in its own directory, rotated at rotate_bytes, keeping `keep` old files. */
export interface AuditFileSinkIR {
  id: string;
  kind: "file";
  dir: string;
  records: "all" | "checkpoints";
  rotate_bytes: number;
  keep: number;
}

/** An HTTP or FHIR sink: reached from a timer with a cosocket, so its URL is taken apart here. */
export interface AuditHttpSinkIR {
  id: string;
  kind: "http" | "fhir";
  url: string;
  scheme: "http" | "https";
  /** Host to connect to: a literal address, or a name for the conf's resolver. */
  host: string;
  port: number;
  /** The Host header. */
  host_header: string;
  /** Path of the POST: the URL's for http, the base for fhir (the Bundle goes to the base). */
  path: string;
  headers: Record<string, string>;
  timeout_ms: number;
}

export interface CostsIR {
  read: number;
  search: number;
  complex_search: number;
  count_threshold: number;
  count_step: number;
  write: number;
  export: number;
  operation: number;
  /** Operation name (with `$`) -> cost. */
  operations: Record<string, number>;
}

export interface BudgetIR {
  id: string;
  /** Key dimensions besides the tenant, in a fixed order: client_id, sub, patient, class. */
  per: Exclude<BudgetKey, "tenant">[];
  /** Class -> true; null for every class. */
  classes: Partial<Record<InteractionClass, boolean>> | null;
  /** Cost tokens per second. */
  rate: number;
  burst: number;
  shadow: boolean;
}

export interface RateLimitIR {
  store: "local" | "redis";
  dict_bytes: number;
  redis: RedisIR | null;
}

export interface RedisIR {
  host: string;
  port: number;
  db: number;
  /** The password from the URL, when it has one (passwordEnv keeps it out of the bundle). */
  password: string | null;
  password_env: string | null;
  timeout_ms: number;
  pool_size: number;
  idle_ms: number;
  nodes: number;
  retry_s: number;
  /** Local counts pushed every this many ms; null: a script per request. */
  sync_ms: number | null;
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
  cost: number | null;
  keep_authorization: boolean;
  token_cache_class: TokenCacheClass | null;
  authorization: AuthorizationMode | null;
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
    keep_authorization: r.keepAuthorization ?? false,
    token_cache_class: r.tokenCacheClass ?? null,
    authorization: r.authorization ?? null,
  };
}

const BUDGET_DIMS: readonly Exclude<BudgetKey, "tenant">[] = ["client_id", "sub", "patient", "class"];

/** The cost model of a tenant: the defaults, then the policy's costs, then the tenant's. */
export function lowerCosts(policy: CostProps | undefined, tenant: CostProps | undefined): CostsIR {
  const pick = (k: Exclude<keyof CostProps, "operations">): number => tenant?.[k] ?? policy?.[k] ?? DEFAULTS.costs[k];
  return {
    read: pick("read"),
    search: pick("search"),
    complex_search: pick("complexSearch"),
    count_threshold: pick("countThreshold"),
    count_step: pick("countStep"),
    write: pick("write"),
    export: pick("export"),
    operation: pick("operation"),
    operations: { ...(policy?.operations ?? {}), ...(tenant?.operations ?? {}) },
  };
}

/** Tokens per second of a budget's rate. */
export function budgetRate(b: BudgetProps): number {
  return (b.rate.tokens * 1000) / b.rate.perMs;
}

/** A budget's burst: as given, or ten seconds of its rate, rounded up. */
export function budgetBurst(b: BudgetProps): number {
  return b.burst?.tokens ?? Math.max(1, Math.ceil(budgetRate(b) * DEFAULTS.burstSeconds));
}

function lowerBudget(b: BudgetProps): BudgetIR {
  const per = b.per ?? ["tenant"];
  return {
    id: b.id,
    per: BUDGET_DIMS.filter((k) => per.includes(k)),
    classes: b.classes === undefined ? null : Object.fromEntries(b.classes.map((c) => [c, true])),
    rate: budgetRate(b),
    burst: budgetBurst(b),
    shadow: b.mode === "shadow",
  };
}

function lowerRateLimit(p: PolicyInput): RateLimitIR {
  const l = p.limits;
  const r = l?.redis;
  let redis: RedisIR | null = null;
  if (r !== undefined) {
    const u = new URL(r.url);
    const db = u.pathname.replace(/^\//, "");
    redis = {
      host: u.hostname,
      port: u.port === "" ? 6379 : Number(u.port),
      db: db === "" ? 0 : Number(db),
      password: u.password === "" ? null : decodeURIComponent(u.password),
      password_env: r.passwordEnv ?? null,
      timeout_ms: (r.timeout ?? DEFAULTS.redis.timeout).ms,
      pool_size: r.poolSize ?? DEFAULTS.redis.poolSize,
      idle_ms: (r.idleTimeout ?? DEFAULTS.redis.idleTimeout).ms,
      nodes: r.nodes,
      retry_s: (r.retryAfter ?? DEFAULTS.redis.retryAfter).ms / 1000,
      sync_ms: r.sync?.ms ?? null,
    };
  }
  return { store: l?.store ?? DEFAULTS.ratelimit.store, dict_bytes: (l?.dictSize ?? DEFAULTS.ratelimit.dictSize).bytes, redis };
}

/** Whole seconds, at least 1: nginx keeps a cache entry's validity in seconds. */
function wholeSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The cache locations the tenants need, shared by tenants whose types have the same freshness. */
class CacheLocations {
  readonly list: CacheLocationIR[] = [];
  at(ttl_s: number, not_found_s: number | null, stale: boolean): string {
    let l = this.list.find((x) => x.ttl_s === ttl_s && x.not_found_s === not_found_s && x.stale === stale);
    if (l === undefined) {
      l = { loc: `/__fe_cache/${this.list.length}`, ttl_s, not_found_s, stale };
      this.list.push(l);
    }
    return l.loc;
  }
}

function lowerTenantCache(t: TenantProps, locs: CacheLocations): TenantCacheIR | null {
  const c = t.cache;
  if (c === undefined) return null;
  const ttl = Object.entries(c.ttl);
  const shared = new Set<string>(c.shared ?? SHARED_TYPES.filter((s) => c.ttl[s] !== undefined));
  const notFound = c.notFoundTtl === undefined ? null : wholeSeconds(c.notFoundTtl.ms);
  const stale = c.stale ?? false;
  return {
    types: Object.fromEntries(ttl.map(([type, d]) => [type, { loc: locs.at(wholeSeconds(d.ms), notFound, stale), shared: shared.has(type) }])),
    miss_budget: c.missBudget === undefined ? null : lowerBudget(c.missBudget),
  };
}

function lowerCache(p: PolicyInput, locs: CacheLocations): CacheIR | null {
  if (locs.list.length === 0) return null;
  const c = p.cache;
  const d = DEFAULTS.cache;
  return {
    keys_zone_bytes: (c?.keysZone ?? d.keysZone).bytes,
    max_size_bytes: (c?.maxSize ?? d.maxSize).bytes,
    max_entry_bytes: (c?.maxEntry ?? d.maxEntry).bytes,
    inactive_s: wholeSeconds((c?.inactive ?? d.inactive).ms),
    lock_timeout_ms: (c?.lockTimeout ?? d.lockTimeout).ms,
    locations: locs.list,
  };
}

function lowerTenant(t: TenantProps, policyCosts: CostProps | undefined, locs: CacheLocations): TenantIR {
  return {
    id: t.id,
    hosts: (t.hosts ?? []).map((h) => h.toLowerCase()),
    path_prefix: t.pathPrefix ?? null,
    header_value: t.headerValue ?? null,
    fhir_base: t.fhirBase ?? DEFAULTS.fhirBase,
    fhir_versions: [...(t.fhirVersions ?? [])],
    upstream: lowerUpstream(t),
    issuers: [...(t.issuers ?? [])],
    anonymous: t.anonymous ?? false,
    authorization: t.authorization ?? "enforce",
    operations: Object.fromEntries((t.operations ?? []).map((o) => [o.name, o.permission])),
    compartment_search: t.compartmentSearch ?? "refuse",
    compartment_for: Object.fromEntries((t.compartmentFor ?? []).map((c) => [c, true])),
    reject_invalid_scopes: t.invalidScopes === "reject",
    routes: (t.routes ?? []).map(lowerRoute),
    costs: lowerCosts(policyCosts, t.costs),
    budgets: (t.budgets ?? []).map(lowerBudget),
    cache: lowerTenantCache(t, locs),
    break_glass:
      t.breakGlass === undefined
        ? null
        : {
            scope: t.breakGlass.scope ?? DEFAULTS.breakGlassScope,
            reasons: Object.fromEntries(t.breakGlass.reasons.map((r) => [r, true])),
            reason_list: t.breakGlass.reasons.join(", "),
            scopes: (t.breakGlass.scopes ?? []).join(" "),
          },
  };
}

function originOf(u: URL): string {
  return `${u.protocol}//${u.host}`;
}

/** Lowers the issuers and the internal locations their endpoints are reached through. */
function lowerIssuers(issuers: readonly IssuerProps[]): { issuers: IssuerIR[]; locations: IdpLocationIR[] } {
  const locations: IdpLocationIR[] = [];
  const out = issuers.map((s, i): IssuerIR => {
    const timeout = (s.timeout ?? DEFAULTS.issuer.timeout).ms;
    const origins: string[] = [];
    const endpoint = (url: string): EndpointIR => {
      const u = new URL(url);
      const origin = originOf(u);
      let k = origins.indexOf(origin);
      if (k < 0) {
        k = origins.length;
        origins.push(origin);
        const https = u.protocol === "https:";
        locations.push({
          loc: `/__fe_idp/${i}-${k}`,
          origin,
          scheme: https ? "https" : "http",
          host: u.hostname,
          host_header: u.host,
          timeout_ms: timeout,
          tls: https ? { ca: s.tls?.ca ?? DEFAULTS.issuer.caBundle, client_cert: s.tls?.clientCert ?? null, client_key: s.tls?.clientKey ?? null } : null,
        });
      }
      return { loc: `/__fe_idp/${i}-${k}`, path: u.pathname === "" ? "/" : u.pathname };
    };
    const iss = new URL(s.issuer);
    const own = endpoint(s.issuer);
    return {
      id: s.id,
      issuer: s.issuer,
      audiences: [...s.audiences],
      mode: s.mode,
      algs: [...(s.algs ?? DEFAULTS.issuer.algs)],
      skew_s: Math.ceil((s.clockSkew ?? DEFAULTS.issuer.clockSkew).ms / 1000),
      timeout_ms: timeout,
      jwks_refetch_s: Math.max(1, Math.ceil((s.jwksRefetchInterval ?? DEFAULTS.issuer.jwksRefetchInterval).ms / 1000)),
      jwks_max_age_s: Math.max(1, Math.ceil((s.jwksMaxAge ?? DEFAULTS.issuer.jwksMaxAge).ms / 1000)),
      patient_claim: s.patientClaim ?? DEFAULTS.issuer.patientClaim,
      origin_loc: own.loc,
      discovery_path: `${iss.pathname.replace(/\/+$/, "")}/.well-known/openid-configuration`,
      jwks: s.jwksUri === undefined ? null : endpoint(s.jwksUri),
      introspection:
        s.mode === "jwt" || s.introspection === undefined
          ? null
          : {
              endpoint: s.introspection.endpoint === undefined ? null : endpoint(s.introspection.endpoint),
              client_id: s.introspection.clientId,
              secret_env: s.introspection.clientSecretEnv,
            },
    };
  });
  return { issuers: out, locations };
}

function lowerSink(s: AuditSinkProps): AuditSinkIR {
  const d = DEFAULTS.audit.sink;
  if (s.kind === "file") return { id: s.id, kind: "file", dir: s.dir ?? "", records: s.records ?? "all", rotate_bytes: (s.rotateSize ?? d.rotateSize).bytes, keep: s.keep ?? d.keep };
  const u = new URL(s.url);
  const scheme = u.protocol === "https:" ? "https" : "http";
  const port = u.port === "" ? (scheme === "https" ? 443 : 80) : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return {
    id: s.id,
    kind: s.kind,
    url: s.url,
    scheme,
    host: host === "localhost" ? "127.0.0.1" : host,
    port,
    host_header: u.host,
    path: u.pathname === "" ? "/" : u.pathname,
    headers: { ...(s.headers ?? {}) },
    timeout_ms: (s.timeout ?? d.timeout).ms,
  };
}

function lowerAudit(a: AuditProps | undefined): AuditIR | null {
  if (a === undefined) return null;
  const d = DEFAULTS.audit;
  return {
    spool_dir: a.spoolDir ?? "",
    key_file: a.keyFile,
    key_id: a.keyId ?? d.keyId,
    ed25519_key_file: a.ed25519KeyFile ?? null,
    query_values: a.queryValues ?? d.queryValues,
    flush_ms: (a.flushEvery ?? d.flushEvery).ms,
    batch_events: a.batchEvents ?? d.batchEvents,
    batch_bytes: (a.batchBytes ?? d.batchBytes).bytes,
    buffer_bytes: (a.bufferSize ?? d.bufferSize).bytes,
    checkpoint_every: a.checkpointEvery ?? d.checkpointEvery,
    checkpoint_ms: (a.checkpointInterval ?? d.checkpointInterval).ms,
    max_bytes: (a.spoolSize ?? d.spoolSize).bytes,
    segment_bytes: (a.segmentSize ?? d.segmentSize).bytes,
    at_limit: a.atLimit ?? d.atLimit,
    durable: [...(a.durable ?? [])],
    fsync: a.fsync ?? false,
    sinks: (a.sinks ?? []).map(lowerSink),
  };
}

/** The audit paths that default under the state dir, made absolute (the bundler knows the state dir). */
export function resolveAuditPaths(a: AuditIR | null, stateDir: string): AuditIR | null {
  if (a === null) return null;
  const under = (p: string, dflt: string): string => (p === "" ? `${stateDir}/audit/${dflt}` : p.startsWith("/") ? p : `${stateDir}/${p}`);
  return {
    ...a,
    spool_dir: under(a.spool_dir, "spool"),
    sinks: a.sinks.map((s) => (s.kind === "file" ? { ...s, dir: under(s.dir, s.id) } : s)),
  };
}

/** Lowers a policy that passed validation; on an unvalidated one it may throw. */
export function lowerPolicy(p: PolicyInput): PolicyIR {
  const strip = new Set<string>(BUILTIN_STRIP_HEADERS);
  const idp = lowerIssuers(p.issuers ?? []);
  const tc = p.tokenCache;
  const secs = (ms: number): number => ms / 1000;
  for (const h of p.stripHeaders ?? []) strip.add(h.toLowerCase());
  const locs = new CacheLocations();
  const tenants = p.tenants.map((t) => lowerTenant(t, p.costs, locs));
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
    limits: { max_body_bytes: (p.limits?.maxBody ?? DEFAULTS.maxBody).bytes, max_query_params: p.limits?.maxQueryParams ?? DEFAULTS.maxQueryParams },
    ratelimit: lowerRateLimit(p),
    metrics: { max_series: p.metrics?.maxSeries ?? DEFAULTS.maxSeries },
    cache: lowerCache(p, locs),
    audit: lowerAudit(p.audit),
    token_cache: {
      short_s: secs((tc?.shortTtl ?? DEFAULTS.tokenCache.shortTtl).ms),
      long_s: secs((tc?.longTtl ?? DEFAULTS.tokenCache.longTtl).ms),
      negative_s: secs((tc?.negativeTtl ?? DEFAULTS.tokenCache.negativeTtl).ms),
    },
    issuers: idp.issuers,
    idp_locations: idp.locations,
    tenants,
  };
}
