/**
 * GENERATED from compiler/ir.ts by `npm run gen:ir` (compiler/emit/ir-decl.ts); do not edit.
 * Shape of `lua/generated/policy.lua`, which the compiler writes for each bundle from the IR:
 * fields read-only, null as undefined (absent in Lua), records as LuaTables.
 * test/unit/compiler/ir-decl.test.ts fails when this file is stale.
 */
export type AuthorizationMode = "enforce" | "shadow";
export type InteractionClass = "read" | "search" | "write" | "export" | "operation";
export type JwtAlg = "RS256" | "PS256" | "ES256";
export type ResolutionMode = "claim" | "host" | "path" | "header";
export type TokenCacheClass = "short" | "long";
export type ValidationMode = "jwt" | "introspection" | "auto";

export interface PolicyIR {
  readonly ir_version: 1;
  /** Bundle version (sha256 hex), filled by the bundler; "" before that. */
  readonly version: string;
  readonly name: string;
  readonly resolution: { readonly order: readonly ResolutionMode[]; readonly header: string; readonly claim: string };
  readonly strip_headers: readonly string[];
  readonly request_id: { readonly header: string; readonly pattern: string };
  readonly limits: { readonly max_body_bytes: number; readonly max_query_params: number };
  readonly ratelimit: RateLimitIR;
  readonly metrics: { readonly max_series: number };
  /** The response cache's storage; null when no tenant caches anything. */
  readonly cache: CacheIR | undefined;
  /** The audit trail; null without one. Paths are absolute once the bundler has resolved them. */
  readonly audit: AuditIR | undefined;
  readonly token_cache: { readonly short_s: number; readonly long_s: number; readonly negative_s: number };
  readonly issuers: readonly IssuerIR[];
  /** One internal nginx location per (issuer, origin) the gateway calls; see compiler/emit/gateway-conf. */
  readonly idp_locations: readonly IdpLocationIR[];
  readonly tenants: readonly TenantIR[];
}

/** A URL the gateway calls through an internal location: `loc` + `path` is the subrequest URI. */
export interface EndpointIR {
  readonly loc: string;
  readonly path: string;
}

export interface IdpLocationIR {
  /** `/__fe_idp/<issuer index>-<origin index>` */
  readonly loc: string;
  /** `scheme://host[:port]`, as proxy_pass takes it. */
  readonly origin: string;
  readonly scheme: "http" | "https";
  readonly host: string;
  /** The Host header: host, plus the port when it is not the scheme's default. */
  readonly host_header: string;
  readonly timeout_ms: number;
  /** Only for https. */
  readonly tls: { readonly ca: string; readonly client_cert: string | undefined; readonly client_key: string | undefined } | undefined;
}

export interface IssuerIR {
  readonly id: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly mode: ValidationMode;
  readonly algs: readonly JwtAlg[];
  readonly skew_s: number;
  readonly timeout_ms: number;
  readonly jwks_refetch_s: number;
  readonly jwks_max_age_s: number;
  readonly patient_claim: string;
  /** The issuer's own origin location; discovered endpoints must live under it. */
  readonly origin_loc: string;
  /** `<issuer path>/.well-known/openid-configuration` under origin_loc. */
  readonly discovery_path: string;
  /** Configured JWKS endpoint; null means discover it. */
  readonly jwks: EndpointIR | undefined;
  /** Null in jwt mode. `endpoint` null means discover it. */
  readonly introspection: { readonly endpoint: EndpointIR | undefined; readonly client_id: string; readonly secret_env: string } | undefined;
}

export interface TenantIR {
  readonly id: string;
  readonly hosts: readonly string[];
  readonly path_prefix: string | undefined;
  readonly header_value: string | undefined;
  readonly fhir_base: string;
  readonly fhir_versions: readonly string[];
  readonly upstream: UpstreamIR;
  /** Issuer ids; empty only for an anonymous tenant. */
  readonly issuers: readonly string[];
  readonly anonymous: boolean;
  readonly authorization: AuthorizationMode;
  /** Operation name -> permission letter. */
  readonly operations: LuaTable<string, string>;
  readonly compartment_search: "refuse" | "inject";
  /** Contexts held to the patient compartment besides patient: context -> true. */
  readonly compartment_for: LuaTable<string, boolean>;
  readonly reject_invalid_scopes: boolean;
  readonly routes: readonly RouteIR[];
  /** The policy's cost model with the tenant's overrides applied. */
  readonly costs: CostsIR;
  readonly budgets: readonly BudgetIR[];
  readonly cache: TenantCacheIR | undefined;
  readonly break_glass: BreakGlassIR | undefined;
}

export interface BreakGlassIR {
  /** The scope a token must hold. */
  readonly scope: string;
  /** Reason code -> true. */
  readonly reasons: LuaTable<string, boolean>;
  /** The reasons in policy order, for the refusal's message. */
  readonly reason_list: string;
  /** Space-separated scopes a break-glass request also holds; "" for none. */
  readonly scopes: string;
}

export interface CacheIR {
  readonly keys_zone_bytes: number;
  readonly max_size_bytes: number;
  readonly max_entry_bytes: number;
  readonly inactive_s: number;
  readonly lock_timeout_ms: number;
  /** One internal location per distinct (TTL, 404 TTL, stale) that a tenant's type uses. */
  readonly locations: readonly CacheLocationIR[];
}

export interface CacheLocationIR {
  /** `/__fe_cache/<n>`; the checked-read twin is `/__fe_cache/<n>/checked`. */
  readonly loc: string;
  readonly ttl_s: number;
  readonly not_found_s: number | undefined;
  readonly stale: boolean;
}

export interface TenantCacheIR {
  /** Cached type (or `metadata`) -> its cache location, and whether it is cached tenant-wide. */
  readonly types: LuaTable<string, { readonly loc: string; readonly shared: boolean }>;
  /** Spent only by requests the cache sends to the upstream. */
  readonly miss_budget: BudgetIR | undefined;
}

export interface AuditIR {
  /** The spool directory; "" until the bundler resolves the default under the state dir. */
  readonly spool_dir: string;
  readonly key_file: string;
  readonly key_id: string;
  /** Ed25519 private key (PEM) for the checkpoints; null: HMAC-SHA256 with key_file. */
  readonly ed25519_key_file: string | undefined;
  readonly query_values: "omit" | "hmac";
  readonly flush_ms: number;
  readonly batch_events: number;
  readonly batch_bytes: number;
  readonly buffer_bytes: number;
  readonly checkpoint_every: number;
  readonly checkpoint_ms: number;
  readonly max_bytes: number;
  readonly segment_bytes: number;
  readonly at_limit: "fail-closed" | "drop-oldest";
  readonly durable: readonly (("write" | "break-glass"))[];
  readonly fsync: boolean;
  readonly sinks: readonly AuditSinkIR[];
}

export type AuditSinkIR = AuditFileSinkIR | AuditHttpSinkIR;

/** A JSONL file sink in its own directory, rotated at rotate_bytes, keeping `keep` old files. */
export interface AuditFileSinkIR {
  readonly id: string;
  readonly kind: "file";
  readonly dir: string;
  readonly records: "all" | "checkpoints";
  readonly rotate_bytes: number;
  readonly keep: number;
}

/** An HTTP or FHIR sink: reached from a timer with a cosocket, so its URL is taken apart here. */
export interface AuditHttpSinkIR {
  readonly id: string;
  readonly kind: "http" | "fhir";
  readonly url: string;
  readonly scheme: "http" | "https";
  /** Host to connect to: a literal address, or a name for the conf's resolver. */
  readonly host: string;
  readonly port: number;
  /** The Host header. */
  readonly host_header: string;
  /** Path of the POST: the URL's for http, the base for fhir (the Bundle goes to the base). */
  readonly path: string;
  readonly headers: LuaTable<string, string>;
  readonly timeout_ms: number;
}

export interface CostsIR {
  readonly read: number;
  readonly search: number;
  readonly complex_search: number;
  readonly count_threshold: number;
  readonly count_step: number;
  readonly write: number;
  readonly export: number;
  readonly operation: number;
  /** Operation name (with `$`) -> cost. */
  readonly operations: LuaTable<string, number>;
}

export interface BudgetIR {
  readonly id: string;
  /** Key dimensions besides the tenant, in a fixed order: client_id, sub, patient, class. */
  readonly per: readonly ("client_id" | "sub" | "patient" | "class")[];
  /** Class -> true; null for every class. */
  readonly classes: LuaTable<InteractionClass, boolean> | undefined;
  /** Cost tokens per second. */
  readonly rate: number;
  readonly burst: number;
  readonly shadow: boolean;
}

export interface RateLimitIR {
  readonly store: "local" | "redis";
  readonly dict_bytes: number;
  readonly redis: RedisIR | undefined;
}

export interface RedisIR {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  /** The password from the URL, when it has one (passwordEnv keeps it out of the bundle). */
  readonly password: string | undefined;
  readonly password_env: string | undefined;
  readonly timeout_ms: number;
  readonly pool_size: number;
  readonly idle_ms: number;
  readonly nodes: number;
  readonly retry_s: number;
  /** Local counts pushed every this many ms; null: a script per request. */
  readonly sync_ms: number | undefined;
}

export interface UpstreamIR {
  readonly name: string;
  readonly scheme: "http" | "https";
  readonly host: string;
  readonly port: number;
  readonly base_path: string;
  readonly keepalive: number;
  readonly connect_timeout_ms: number;
  readonly read_timeout_ms: number;
}

export interface RouteIR {
  readonly id: string;
  readonly match: { readonly interactions: readonly string[] | undefined; readonly resource_types: readonly string[] | undefined; readonly operations: readonly string[] | undefined };
  readonly action: "allow" | "deny";
  readonly cost: number | undefined;
  readonly keep_authorization: boolean;
  readonly token_cache_class: TokenCacheClass | undefined;
  readonly authorization: AuthorizationMode | undefined;
}

/* The module returns the PolicyIR table itself, so its fields are the module's exports. */
export declare const ir_version: PolicyIR["ir_version"];
export declare const version: PolicyIR["version"];
export declare const name: PolicyIR["name"];
export declare const resolution: PolicyIR["resolution"];
export declare const strip_headers: PolicyIR["strip_headers"];
export declare const request_id: PolicyIR["request_id"];
export declare const limits: PolicyIR["limits"];
export declare const ratelimit: PolicyIR["ratelimit"];
export declare const metrics: PolicyIR["metrics"];
export declare const cache: PolicyIR["cache"];
export declare const audit: PolicyIR["audit"];
export declare const token_cache: PolicyIR["token_cache"];
export declare const issuers: PolicyIR["issuers"];
export declare const idp_locations: PolicyIR["idp_locations"];
export declare const tenants: PolicyIR["tenants"];
