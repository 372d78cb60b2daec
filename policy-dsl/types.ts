import type { CostClass, Interaction, ResolutionMode, RouteAction } from "./constants.ts";
import type { Duration, Size } from "./units.ts";

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
  /** @default seconds(2) */
  readonly connectTimeout?: Duration;
  /** @default seconds(30) */
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
  /** @default "allow" */
  readonly action?: RouteAction;
  /**
   * Rate-limit cost class of matching requests.
   * @default the classified interaction's own cost
   */
  readonly cost?: CostClass;
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
  readonly upstream: UpstreamProps;
  /** First match wins; a request no route matches is allowed at its default cost. @default [] */
  readonly routes?: readonly RouteProps[];
}

export interface LimitsProps {
  /**
   * Largest request body accepted; larger is a 413 OperationOutcome.
   * @default megabytes(16)
   */
  readonly maxBody?: Size;
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

export interface PolicyInput {
  /** Names the policy in manifests and logs. */
  readonly name: string;
  /** @default { order: ["claim", "host", "path", "header"], header: "X-Tenant", claim: "tenant" } */
  readonly resolution?: ResolutionProps;
  /** Also merged with `tenants/*.yaml` next to the policy file, after these. */
  readonly tenants: readonly TenantProps[];
  /**
   * Extra client headers removed before proxying, on top of {@link BUILTIN_STRIP_HEADERS}.
   * @default []
   */
  readonly stripHeaders?: readonly string[];
  /** @default { maxBody: megabytes(16) } */
  readonly limits?: LimitsProps;
  /** @default { maxSeries: 2000 } */
  readonly metrics?: MetricsProps;
  /** @default { header: "X-Request-ID" } */
  readonly requestId?: RequestIdProps;
}
