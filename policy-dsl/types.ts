import type { BudgetKey, Interaction, InteractionClass, RateLimitStore, ResolutionMode, RouteAction } from "./constants.ts";
import type { Duration, Rate, Size, Tokens } from "./units.ts";

/** How a request is assigned to a tenant. */
export interface ResolutionProps {
  /**
   * Modes tried in order; the first that names a tenant wins, and a later mode never overrides it.
   * @default ["claim", "host", "path", "header"]
   */
  readonly order?: readonly ResolutionMode[];
  /**
   * Request header read by the `header` mode.
   * @default "X-Tenant"
   */
  readonly header?: string;
  /**
   * Access-token claim read by the `claim` mode.
   * @default "tenant"
   */
  readonly claim?: string;
}

export interface UpstreamProps {
  /** `http(s)://host[:port][/base/path]`; the base path is prefixed to every proxied FHIR path. */
  readonly url: string;
  /**
   * Idle keepalive connections each worker keeps to this upstream.
   * @default 32
   */
  readonly keepalive?: number;
  /** Time limit to connect to the upstream. @default seconds(2) */
  readonly connectTimeout?: Duration;
  /** Time limit between two reads of the upstream's response (and two writes of the request). @default seconds(30) */
  readonly readTimeout?: Duration;
}

export interface RouteMatchProps {
  /** Matches any interaction when omitted. */
  readonly interactions?: readonly Interaction[];
  /** R4 resource type names; matches any type when omitted. */
  readonly resourceTypes?: readonly string[];
  /** Operation names with their `$` (`"$export"`); matches any (or no) operation when omitted. */
  readonly operations?: readonly string[];
}

export interface RouteProps {
  /** Unique within the tenant; appears in audit events and metrics. */
  readonly id: string;
  /** All given criteria must match. An empty match matches every request. */
  readonly match: RouteMatchProps;
  /** `deny` refuses what the route matches (403); `allow` lets it on to the other checks. @default "allow" */
  readonly action?: RouteAction;
  /**
   * Cost tokens a matching request spends from each budget that applies, instead of what the
   * cost model ({@link CostProps}) says. In a batch, each entry the route matches costs this.
   * @default the cost model's
   */
  readonly cost?: number;
  /**
   * Forward the client's Authorization header to the upstream. Off, the upstream never sees the
   * token and relies on the identity headers the gateway sets.
   * @default false
   */
  readonly keepAuthorization?: boolean;
  /**
   * How long a validated token may be served from the cache for matching requests
   * (see {@link TokenCacheProps}).
   * @default "long" for read, vread, instance history and capabilities; "short" for the rest
   */
  readonly tokenCacheClass?: TokenCacheClass;
  /** Overrides the tenant's {@link TenantProps.authorization} for matching requests. */
  readonly authorization?: AuthorizationMode;
}

export interface TenantProps {
  /** `^[a-z][a-z0-9-]{0,31}$`; used in nginx names, metrics labels and audit events. */
  readonly id: string;
  /** Path prefix that selects this tenant under the `path` mode (`"/acme"`). @default none */
  readonly pathPrefix?: string;
  /** Exact host names (no port) that select this tenant under the `host` mode. @default [] */
  readonly hosts?: readonly string[];
  /** Value of `resolution.header` that selects this tenant under the `header` mode. @default none */
  readonly headerValue?: string;
  /**
   * Path under the prefix where the FHIR API starts.
   * @default "/fhir"
   */
  readonly fhirBase?: string;
  /**
   * Version segments accepted right after `fhirBase` (`["R4"]` accepts `/fhir/R4/Patient`).
   * @default []
   */
  readonly fhirVersions?: readonly string[];
  /** The FHIR server this tenant's requests are proxied to. */
  readonly upstream: UpstreamProps;
  /**
   * Ids of the {@link PolicyInput.issuers} whose tokens this tenant accepts. Every request but
   * metadata and .well-known/smart-configuration must carry a valid bearer token from one of them.
   * Give either issuers or `anonymous: true`.
   */
  readonly issuers?: readonly string[];
  /**
   * Serve this tenant without tokens (a public or test FHIR server). Must be said explicitly:
   * a tenant without issuers is a policy error, never an open door.
   * @default false
   */
  readonly anonymous?: boolean;
  /**
   * `enforce`: a request its SMART scopes do not allow is a 403. `shadow`: it is forwarded,
   * and the would-be denial is counted, so operators can roll scopes out safely.
   * @default "enforce"
   */
  readonly authorization?: AuthorizationMode;
  /**
   * FHIR operations tokens may call, and the SMART permission each needs on its resource type
   * (`*` for a system-level call): `{ name: "$everything", permission: "r" }`. Operations not
   * listed are refused, except system-level `$export`, which needs `system/*.rs`.
   * @default []
   */
  readonly operations?: readonly OperationRuleProps[];
  /**
   * A `patient/`-scoped search on a compartment type that names no patient:
   * - `refuse` (default): 403. Explicit and safe. The app learns it must name the patient,
   *   and what reaches the upstream is exactly what the app sent.
   * - `inject`: the gateway adds the patient parameter (`patient=<id>`, or `_id` on Patient)
   *   and forwards. Naive apps work, but the upstream answers a different query from the one
   *   the app sent: paging links and `_summary=count` totals reflect the injected filter, and
   *   an app cannot tell its search was narrowed. A search naming another patient, a chain or
   *   `_has` is still refused.
   * @default "refuse"
   */
  readonly compartmentSearch?: "refuse" | "inject";
  /**
   * Contexts whose scopes are also held to the patient compartment, as `patient/` scopes are:
   * `["user"]` keeps a practitioner app launched for one patient on that patient's chart. A
   * token without a patient in context then gets nothing from those scopes but public reads.
   * @default [] (user/ and system/ scopes reach every patient, as SMART defines them)
   */
  readonly compartmentFor?: readonly ("user" | "system")[];
  /**
   * A token whose scope string holds a scope that does not parse (letters out of order,
   * unknown letters, an unknown type): `ignore` that scope (it grants nothing; counted in
   * fe_scope_ignored_total), or `reject` every request of the token with a 403.
   * @default "ignore"
   */
  readonly invalidScopes?: "ignore" | "reject";
  /** First match wins; a request no route matches is allowed at its default cost. @default [] */
  readonly routes?: readonly RouteProps[];
  /** Overrides the policy's {@link PolicyInput.costs} for this tenant, field by field. @default the policy's */
  readonly costs?: CostProps;
  /**
   * Token buckets every request of the tenant spends its cost from. Each budget that applies to
   * a request must admit it; when one refuses, none is charged. @default [] (no limits)
   */
  readonly budgets?: readonly BudgetProps[];
  /** The tenant's response cache (lua-plugins/cache). @default none: nothing of the tenant is cached */
  readonly cache?: TenantCacheProps;
  /**
   * Emergency access (lua-plugins/breakglass): a request that carries `X-Break-Glass: <reason>`,
   * from a token holding {@link BreakGlassProps.scope}, is authorized without the tenant's
   * `compartmentFor` and with {@link BreakGlassProps.scopes} added, and its audit event says
   * so. @default none: a request asking for it is refused (403)
   */
  readonly breakGlass?: BreakGlassProps;
}

/**
 * Break-glass: a clinician's declared emergency. It never widens `patient/` scopes (their
 * compartment is what they mean), and it bypasses the response cache both ways.
 */
export interface BreakGlassProps {
  /** The scope a token must hold to break glass; it grants nothing by itself. @default "break-glass" */
  readonly scope?: string;
  /**
   * The reason codes a request may give in X-Break-Glass (`^[a-z0-9][a-z0-9_.:-]{0,63}$`,
   * recorded in the audit event; never free text, which could carry PHI).
   */
  readonly reasons: readonly string[];
  /** Scopes the token also holds for a break-glass request (`["user/*.rs"]`). @default [] */
  readonly scopes?: readonly string[];
}

/**
 * What a tenant caches, and for whom. A response is cached only under a key that names the
 * policy version, the tenant, the partition (the patient under patient/ scopes, otherwise the
 * user; the whole tenant for a `shared` type), the generation of its type (bumped by every
 * write through the gateway), the upstream URI with the canonical query, and the
 * representation (JSON or XML). Only GET reads and type searches are cached.
 */
export interface TenantCacheProps {
  /**
   * How long a response of each type stays fresh: `{ ValueSet: seconds(3600), Observation:
   * seconds(30) }`, in whole seconds. `metadata` names the CapabilityStatement. A type not
   * listed is never cached, so clinical types are cached only where the policy says so.
   */
  readonly ttl: Readonly<Record<string, Duration>>;
  /**
   * Types that hold no PHI, cached once for the whole tenant instead of per patient or user. A
   * type in the Patient compartment cannot be shared (FE2702).
   * @default the conformance and terminology types among `ttl`'s ({@link SHARED_TYPES})
   */
  readonly shared?: readonly string[];
  /** How long a 404 is cached. @default none: a 404 is not cached */
  readonly notFoundTtl?: Duration;
  /**
   * Serve a stale response while one request refreshes it in the background, and while the
   * upstream fails or times out (proxy_cache_use_stale, proxy_cache_background_update).
   * @default false
   */
  readonly stale?: boolean;
  /**
   * A budget that only requests going to the upstream through the cache (a miss, an expired
   * entry) spend from, so a client that thrashes the cache cannot exhaust the upstream while
   * hits cost it nothing. Spent after the response, so one request may overdraw it; while it
   * cannot pay, the client's cacheable requests are 429s. Counted in this node only, whatever
   * `limits.store` is. @default none
   */
  readonly missBudget?: Omit<BudgetProps, "classes">;
}

/** Where the response cache keeps its entries: one nginx proxy_cache for every tenant. */
export interface CacheProps {
  /** Shared memory for the cache's keys (nginx holds about 4,000 per MB). @default megabytes(10) */
  readonly keysZone?: Size;
  /** Most disk the entries take; past it nginx removes the least recently used. @default megabytes(256) */
  readonly maxSize?: Size;
  /**
   * Largest response stored. Larger ones, and responses without a Content-Length, are served
   * but not stored. @default megabytes(1)
   */
  readonly maxEntry?: Size;
  /** An entry not used for this long is removed, fresh or not. @default seconds(600) */
  readonly inactive?: Duration;
  /**
   * While one request fetches a key, others for the same key wait up to this long for it
   * (proxy_cache_lock), then go to the upstream themselves. They look every 500 ms, one at a
   * time, and when the response turns out not to be storable they have waited for nothing
   * (hit-for-pass then spares the key's later requests): longer protects a slow upstream from
   * a stampede better, shorter bounds that wait. @default seconds(1)
   */
  readonly lockTimeout?: Duration;
}

/**
 * What a request costs, in cost tokens: a request spends its cost from each budget that
 * applies. metadata and .well-known/smart-configuration cost 0, always.
 */
export interface CostProps {
  /** read, vread and instance history. @default 1 */
  readonly read?: number;
  /** A search (and type or system history) without the expensive parameters. @default 3 */
  readonly search?: number;
  /** A search with `_include`, `_revinclude`, a chained parameter or `_has`. @default 5 */
  readonly complexSearch?: number;
  /** A search's `_count` above this costs extra. @default 100 */
  readonly countThreshold?: number;
  /** Above the threshold, 1 more per this many (or part of it) of `_count`. @default 100 */
  readonly countStep?: number;
  /** create, update, patch, delete (a batch or transaction costs the sum of its entries). @default 2 */
  readonly write?: number;
  /** A `$export` kick-off, at any level. @default 10 */
  readonly export?: number;
  /** Any other operation (`$everything`...). @default 5 */
  readonly operation?: number;
  /** Per operation, with its `$`: `{ "$everything": 20 }`. @default {} */
  readonly operations?: Readonly<Record<string, number>>;
}

/**
 * A token bucket: it holds up to `burst` cost tokens, refills at `rate`, and admits a request
 * when it still holds the request's cost.
 */
export interface BudgetProps {
  /** `^[a-z][a-z0-9-]{0,31}$`, unique in the tenant; named in RateLimit headers and metrics. */
  readonly id: string;
  /**
   * What one bucket is for. `["client_id"]` gives each client its own bucket; `["patient",
   * "class"]` each patient in context one bucket per interaction class. A request without one
   * of the values (no token, or no patient in context) is not limited by this budget.
   * @default ["tenant"] (one bucket for the whole tenant)
   */
  readonly per?: readonly BudgetKey[];
  /** Only requests of these classes spend from it. @default every class */
  readonly classes?: readonly InteractionClass[];
  /** Sustained refill: `perMinute(600)`. */
  readonly rate: Rate;
  /**
   * Most tokens the bucket holds (what a client may spend at once after a pause). It must be at
   * least the cost of one request of each class the budget applies to.
   * @default ten seconds of `rate`, rounded up
   */
  readonly burst?: Tokens;
  /**
   * `enforce`: a request the bucket cannot pay for is a 429. `shadow`: it is forwarded and the
   * would-be 429 is counted (fe_ratelimit_decisions_total{outcome="shadow_refused"}).
   * @default "enforce"
   */
  readonly mode?: AuthorizationMode;
}

/** The Redis that keeps cluster-wide budgets (`limits.store: "redis"`). */
export interface RedisProps {
  /** `redis://[:password@]host[:port][/db]`; the password is better given by `passwordEnv`. */
  readonly url: string;
  /** Environment variable holding the password; nginx reads it when it starts. @default none */
  readonly passwordEnv?: string;
  /** Time limit of one Redis call (connect, send, read); past it the node counts locally. @default milliseconds(50) */
  readonly timeout?: Duration;
  /** Idle connections each worker keeps to Redis. @default 16 */
  readonly poolSize?: number;
  /** How long an idle pooled connection is kept. @default seconds(60) */
  readonly idleTimeout?: Duration;
  /**
   * How many gateway nodes share the budgets. While Redis cannot be reached, each node limits
   * alone at 1/nodes of every budget's rate and burst.
   */
  readonly nodes: number;
  /** After a failed call, how long a worker counts locally before it tries Redis again. @default seconds(1) */
  readonly retryAfter?: Duration;
  /**
   * Count locally and push to Redis every `sync`, instead of a script call per request. Cheaper
   * (no Redis call on the request path) and looser: between syncs each worker of each node
   * counts the refill as its own, so the cluster may admit up to (workers - 1) x (burst + rate x
   * sync) more than a budget allows (see lua-plugins/ratelimit/README.md).
   * @default none: a script per request, exact across the cluster
   */
  readonly sync?: Duration;
}

export interface LimitsProps {
  /**
   * Largest request body accepted; larger is a 413 OperationOutcome.
   * @default megabytes(16)
   */
  readonly maxBody?: Size;
  /**
   * Most parameters a query may have; more is a 400 OperationOutcome (lua-plugins/http/query).
   * @default 100
   */
  readonly maxQueryParams?: number;
  /**
   * Where budgets count: `local`, in each node's shared memory (exact across the node's workers);
   * `redis`, in {@link LimitsProps.redis}, one count for every node.
   * @default "local"
   */
  readonly store?: RateLimitStore;
  /**
   * Shared memory for the token buckets of each node: a bucket takes a 128-byte slot (keys up to
   * about 40 bytes; measured 191 in the smallest, 32 KB dict), so about 8,000 busy buckets per
   * MB. A bucket that is full again is dropped by itself. When a new bucket does not fit, its
   * budget refuses the request (429), counted as fe_ratelimit_decisions_total{outcome=
   * "dict_full"}: the gateway never forgets a client's spending to make room.
   * @default megabytes(8)
   */
  readonly dictSize?: Size;
  /** Required with `store: "redis"`. */
  readonly redis?: RedisProps;
}

export interface MetricsProps {
  /**
   * Most label combinations kept; further series are dropped and counted.
   * @default 2000
   */
  readonly maxSeries?: number;
}

export interface RequestIdProps {
  /**
   * Header that carries the request id both ways.
   * @default "X-Request-ID"
   */
  readonly header?: string;
}

export type ValidationMode = "jwt" | "introspection" | "auto";
export type JwtAlg = "RS256" | "PS256" | "ES256";
export type TokenCacheClass = "short" | "long";
export type AuthorizationMode = "enforce" | "shadow";

export interface OperationRuleProps {
  /** With its `$`: `"$everything"`. */
  readonly name: string;
  /** The SMART permission letter the call needs on its resource type. */
  readonly permission: "c" | "r" | "u" | "d" | "s";
}

/** RFC 7662 token introspection at the issuer, authenticated with client_secret_basic. */
export interface IntrospectionProps {
  /**
   * The introspection endpoint.
   * @default the `introspection_endpoint` of the issuer's discovery document
   */
  readonly endpoint?: string;
  /** The gateway's client id at the introspection endpoint. */
  readonly clientId: string;
  /**
   * Name of the environment variable that holds the client secret. nginx reads it when it
   * starts; the secret is never written into a bundle, a manifest or a log.
   */
  readonly clientSecretEnv: string;
}

/** TLS towards the issuer's endpoints (discovery, JWKS, introspection). */
export interface IssuerTlsProps {
  /** PEM file of the CAs that sign the endpoints' certificates. @default the system CA bundle */
  readonly ca?: string;
  /** PEM client certificate for mTLS; needs `clientKey`. @default none */
  readonly clientCert?: string;
  /** PEM private key of `clientCert`. @default none */
  readonly clientKey?: string;
}

/** An authorization server whose access tokens tenants accept. */
export interface IssuerProps {
  /** `^[a-z][a-z0-9-]{0,31}$`; tenants name issuers by it. */
  readonly id: string;
  /** The exact `iss` of its tokens, an http(s) URL (http only on loopback). */
  readonly issuer: string;
  /** Accepted `aud` values; a token must carry one of them. */
  readonly audiences: readonly string[];
  /**
   * `jwt`: validate signed JWTs locally with the JWKS. `introspection`: ask the issuer about
   * every (uncached) token. `auto`: JWTs locally, anything else by introspection.
   */
  readonly mode: ValidationMode;
  /** JWT signature algorithms accepted; `none` and HMAC ones never are. @default ["RS256", "PS256", "ES256"] */
  readonly algs?: readonly JwtAlg[];
  /** Tolerance on exp, nbf and iat. @default seconds(60) */
  readonly clockSkew?: Duration;
  /**
   * The JWKS URL.
   * @default the `jwks_uri` of `<issuer>/.well-known/openid-configuration`
   */
  readonly jwksUri?: string;
  /** Required for the `introspection` and `auto` modes. */
  readonly introspection?: IntrospectionProps;
  /** Time limit of one call to the issuer (connect, send, read). @default seconds(3) */
  readonly timeout?: Duration;
  /**
   * Least time between two JWKS downloads for this issuer, however many unknown kids arrive.
   * @default seconds(30)
   */
  readonly jwksRefetchInterval?: Duration;
  /** A JWKS older than this is downloaded again. @default seconds(3600) */
  readonly jwksMaxAge?: Duration;
  /** @default verify against the system CAs, no client certificate */
  readonly tls?: IssuerTlsProps;
  /** Claim (or introspection field) naming the patient in context. @default "patient" */
  readonly patientClaim?: string;
}

/**
 * Validated tokens are cached under the SHA-256 of the token, never the token itself. An entry
 * serves a request while it is younger than the request's class TTL and the token has not
 * expired, so a revoked token stops working within the class TTL.
 */
export interface TokenCacheProps {
  /** Writes, searches, operations. @default seconds(5) */
  readonly shortTtl?: Duration;
  /** Reads by id and capabilities. @default seconds(60) */
  readonly longTtl?: Duration;
  /** How long an invalid token is remembered as such. @default seconds(5) */
  readonly negativeTtl?: Duration;
}

/** Where audit batches go, besides the spool; each sink has its own cursor into the spool. */
export type AuditSinkProps = AuditFileSinkProps | AuditHttpSinkProps | AuditFhirSinkProps;

export interface AuditFileSinkProps {
  /** `^[a-z][a-z0-9-]{0,31}$`; names the sink's cursor and its metrics. */
  readonly id: string;
  /** A JSONL file in the state dir, rotated. */
  readonly kind: "file";
  /** Directory of `audit.jsonl` and its rotated files. @default `<state>/audit/<id>` */
  readonly dir?: string;
  /** `checkpoints`: only the signed checkpoints, for a store apart from the main one. @default "all" */
  readonly records?: "all" | "checkpoints";
  /** The file is rotated when it would pass this. @default megabytes(64) */
  readonly rotateSize?: Size;
  /** Rotated files kept; the oldest is removed past it. @default 10 */
  readonly keep?: number;
}

export interface AuditHttpSinkProps {
  /** `^[a-z][a-z0-9-]{0,31}$`; names the sink's cursor and its metrics. */
  readonly id: string;
  /** Batches POSTed as NDJSON, retried with backoff. */
  readonly kind: "http";
  /** `http://host:port/path`: each batch is POSTed as NDJSON with an `Idempotency-Key`. */
  readonly url: string;
  /** Extra request headers (an API key...). @default {} */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time limit of one POST (connect, send, read); past it, the batch is retried. @default seconds(5) */
  readonly timeout?: Duration;
}

export interface AuditFhirSinkProps {
  /** `^[a-z][a-z0-9-]{0,31}$`; names the sink's cursor and its metrics. */
  readonly id: string;
  /** AuditEvents (IHE BALP) in a batch Bundle, POSTed to a FHIR server. */
  readonly kind: "fhir";
  /** A FHIR R4 base (`http://host:port/R4`): events are POSTed as a batch Bundle of AuditEvents (IHE BALP). */
  readonly url: string;
  /** Extra request headers (an Authorization for the FHIR server...). @default {} */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time limit of one POST (connect, send, read); past it, the batch is retried. @default seconds(5) */
  readonly timeout?: Duration;
}

/**
 * The audit trail (lua-plugins/audit/README.md): an event per request, batched per worker,
 * hash-chained, written to a local spool and shipped from there to the sinks.
 */
export interface AuditProps {
  /** HMAC-SHA256 key for the signed checkpoints (and hashed query values): a file of at least 32 bytes, read at start. */
  readonly keyFile: string;
  /** Names the key in checkpoints, so keys can rotate. @default "default" */
  readonly keyId?: string;
  /**
   * An Ed25519 private key (PEM, PKCS#8, as `openssl genpkey -algorithm ed25519` writes it):
   * checkpoints are then signed with it instead of the HMAC, so whoever checks them, with the
   * public key alone, cannot forge them. `keyFile` still keys the hashed query values.
   * @default none: HMAC-SHA256 checkpoints
   */
  readonly ed25519KeyFile?: string;
  /** Query values are never recorded; `hmac` records an HMAC of each, so equal values can be matched. @default "omit" */
  readonly queryValues?: "omit" | "hmac";
  /** A worker seals its batch at least this often. @default milliseconds(100) */
  readonly flushEvery?: Duration;
  /** A batch is sealed when it has this many events... @default 256 */
  readonly batchEvents?: number;
  /** ...or this many bytes. @default kilobytes(64) */
  readonly batchBytes?: Size;
  /** Events a worker holds before they are written; past it, events are dropped and a gap recorded. @default megabytes(4) */
  readonly bufferSize?: Size;
  /** A signed checkpoint every this many batches... @default 16 */
  readonly checkpointEvery?: number;
  /** ...or this often, whichever comes first. @default seconds(10) */
  readonly checkpointInterval?: Duration;
  /** Where the spool's segment files are written. @default `<state>/audit/spool` */
  readonly spoolDir?: string;
  /** Most disk the spool takes. @default megabytes(256) */
  readonly spoolSize?: Size;
  /** A spool segment file is closed at this size, and the next continues the chain. @default megabytes(4) */
  readonly segmentSize?: Size;
  /**
   * At `spoolSize`: `fail-closed` answers new FHIR requests 503 (Retry-After) until the sinks
   * catch up; `drop-oldest` removes the oldest unshipped segments, counts them and records a
   * gap. @default "fail-closed"
   */
  readonly atLimit?: "fail-closed" | "drop-oldest";
  /**
   * Request classes whose event reaches the spool before the response is released (written by
   * the header filter, one blocking write each). @default []
   */
  readonly durable?: readonly ("write" | "break-glass")[];
  /** Also fsync the spool on each durable write (survives power loss, costs a disk flush). @default false */
  readonly fsync?: boolean;
  /** Where the spool is shipped, each sink with its own cursor; by `kind`, below. @default [] (the spool only) */
  readonly sinks?: readonly AuditSinkProps[];
}

export interface PolicyInput {
  /** Names the policy in manifests and logs. */
  readonly name: string;
  /** @default { order: ["claim", "host", "path", "header"], header: "X-Tenant", claim: "tenant" } */
  readonly resolution?: ResolutionProps;
  /** Authorization servers; tenants refer to them by id. @default [] */
  readonly issuers?: readonly IssuerProps[];
  /** @default { shortTtl: seconds(5), longTtl: seconds(60), negativeTtl: seconds(5) } */
  readonly tokenCache?: TokenCacheProps;
  /** Also merged with `tenants/*.yaml` next to the policy file, after these. */
  readonly tenants: readonly TenantProps[];
  /**
   * Extra client headers removed before proxying, on top of {@link BUILTIN_STRIP_HEADERS}.
   * @default []
   */
  readonly stripHeaders?: readonly string[];
  /** Request size limits, and where the cost limits' buckets live. @default { maxBody: megabytes(16), maxQueryParams: 100, store: "local", dictSize: megabytes(8) } */
  readonly limits?: LimitsProps;
  /** The cost model of every tenant; a tenant's own `costs` override it field by field. @default see {@link CostProps} */
  readonly costs?: CostProps;
  /** The /metrics endpoint's bounds. @default { maxSeries: 2000 } */
  readonly metrics?: MetricsProps;
  /** Storage of the tenants' response caches; used when a tenant has a `cache`. @default see {@link CacheProps} */
  readonly cache?: CacheProps;
  /** The audit trail; none without it. @default none */
  readonly audit?: AuditProps;
  /** The request id the gateway keeps or makes, and sends upstream and back. @default { header: "X-Request-ID" } */
  readonly requestId?: RequestIdProps;
}
