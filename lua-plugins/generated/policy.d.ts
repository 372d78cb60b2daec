/**
 * Shape of `lua/generated/policy.lua`, which the compiler writes for each bundle from the IR in
 * compiler/ir.ts (the two must agree; test/unit/lua/ir-shape.test.ts checks a built bundle).
 */
export type ResolutionMode = "claim" | "host" | "path" | "header";
export type InteractionClass = "read" | "search" | "write" | "export" | "operation";
export type BudgetDim = "client_id" | "sub" | "patient" | "class";

export interface RouteIR {
  readonly id: string;
  readonly match: {
    readonly interactions: readonly string[] | undefined;
    readonly resource_types: readonly string[] | undefined;
    readonly operations: readonly string[] | undefined;
  };
  readonly action: "allow" | "deny";
  readonly cost: number | undefined;
  readonly keep_authorization: boolean;
  readonly token_cache_class: "short" | "long" | undefined;
  readonly authorization: "enforce" | "shadow" | undefined;
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

export interface TenantIR {
  readonly id: string;
  readonly hosts: readonly string[];
  readonly path_prefix: string | undefined;
  readonly header_value: string | undefined;
  readonly fhir_base: string;
  readonly fhir_versions: readonly string[];
  readonly upstream: UpstreamIR;
  readonly issuers: readonly string[];
  readonly anonymous: boolean;
  readonly authorization: "enforce" | "shadow";
  readonly operations: LuaTable<string, string>;
  readonly compartment_search: "refuse" | "inject";
  readonly compartment_for: LuaTable<string, boolean>;
  readonly reject_invalid_scopes: boolean;
  readonly routes: readonly RouteIR[];
  readonly costs: CostsIR;
  readonly budgets: readonly BudgetIR[];
  readonly cache: TenantCacheIR | undefined;
  readonly break_glass: BreakGlassIR | undefined;
}

export interface BreakGlassIR {
  readonly scope: string;
  readonly reasons: LuaTable<string, boolean>;
  readonly reason_list: string;
  readonly scopes: string;
}

export interface TenantCacheIR {
  readonly types: LuaTable<string, { readonly loc: string; readonly shared: boolean }>;
  readonly miss_budget: BudgetIR | undefined;
}

export interface CacheLocationIR {
  readonly loc: string;
  readonly ttl_s: number;
  readonly not_found_s: number | undefined;
  readonly stale: boolean;
}

export interface CacheIR {
  readonly keys_zone_bytes: number;
  readonly max_size_bytes: number;
  readonly max_entry_bytes: number;
  readonly inactive_s: number;
  readonly lock_timeout_ms: number;
  readonly locations: readonly CacheLocationIR[];
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
  readonly operations: LuaTable<string, number>;
}

export interface BudgetIR {
  readonly id: string;
  readonly per: readonly BudgetDim[];
  readonly classes: LuaTable<InteractionClass, boolean> | undefined;
  readonly rate: number;
  readonly burst: number;
  readonly shadow: boolean;
}

export interface RedisIR {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly password: string | undefined;
  readonly password_env: string | undefined;
  readonly timeout_ms: number;
  readonly pool_size: number;
  readonly idle_ms: number;
  readonly nodes: number;
  readonly retry_s: number;
  readonly sync_ms: number | undefined;
}

export interface RateLimitIR {
  readonly store: "local" | "redis";
  readonly dict_bytes: number;
  readonly redis: RedisIR | undefined;
}

export interface EndpointIR {
  readonly loc: string;
  readonly path: string;
}

export type ValidationMode = "jwt" | "introspection" | "auto";

export interface IssuerIR {
  readonly id: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly mode: ValidationMode;
  readonly algs: readonly ("RS256" | "PS256" | "ES256")[];
  readonly skew_s: number;
  readonly timeout_ms: number;
  readonly jwks_refetch_s: number;
  readonly jwks_max_age_s: number;
  readonly patient_claim: string;
  readonly origin_loc: string;
  readonly discovery_path: string;
  readonly jwks: EndpointIR | undefined;
  readonly introspection: { readonly endpoint: EndpointIR | undefined; readonly client_id: string; readonly secret_env: string } | undefined;
}

export interface AuditFileSinkIR {
  readonly id: string;
  readonly kind: "file";
  readonly dir: string;
  readonly records: "all" | "checkpoints";
  readonly rotate_bytes: number;
  readonly keep: number;
}

export interface AuditHttpSinkIR {
  readonly id: string;
  readonly kind: "http" | "fhir";
  readonly url: string;
  readonly scheme: "http" | "https";
  readonly host: string;
  readonly port: number;
  readonly host_header: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeout_ms: number;
}

export type AuditSinkIR = AuditFileSinkIR | AuditHttpSinkIR;

export interface AuditIR {
  readonly spool_dir: string;
  readonly key_file: string;
  readonly key_id: string;
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
  readonly durable: readonly ("write" | "break-glass")[];
  readonly fsync: boolean;
  readonly sinks: readonly AuditSinkIR[];
}

export interface PolicyIR {
  readonly ir_version: number;
  readonly version: string;
  readonly name: string;
  readonly resolution: { readonly order: readonly ResolutionMode[]; readonly header: string; readonly claim: string };
  readonly strip_headers: readonly string[];
  readonly request_id: { readonly header: string };
  readonly limits: { readonly max_body_bytes: number; readonly max_query_params: number };
  readonly ratelimit: RateLimitIR;
  readonly metrics: { readonly max_series: number };
  readonly cache: CacheIR | undefined;
  readonly audit: AuditIR | undefined;
  readonly token_cache: { readonly short_s: number; readonly long_s: number; readonly negative_s: number };
  readonly issuers: readonly IssuerIR[];
  readonly tenants: readonly TenantIR[];
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
export declare const tenants: PolicyIR["tenants"];
