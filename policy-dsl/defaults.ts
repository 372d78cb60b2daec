import { RESOLUTION_MODES } from "./constants.ts";
import { kilobytes, megabytes, milliseconds, seconds } from "./units.ts";

/** Every default of the policy API in one place; the TSDoc on the props repeats these. */
export const DEFAULTS = {
  resolution: { order: RESOLUTION_MODES, header: "X-Tenant", claim: "tenant" },
  fhirBase: "/fhir",
  /** The scope a token must hold to break glass (TenantProps.breakGlass). */
  breakGlassScope: "break-glass",
  upstream: { keepalive: 32, connectTimeout: seconds(2), readTimeout: seconds(30) },
  routeAction: "allow",
  maxBody: megabytes(16),
  maxQueryParams: 100,
  maxSeries: 2000,
  requestIdHeader: "X-Request-ID",
  issuer: {
    algs: ["RS256", "PS256", "ES256"],
    clockSkew: seconds(60),
    timeout: seconds(3),
    jwksRefetchInterval: seconds(30),
    jwksMaxAge: seconds(3600),
    patientClaim: "patient",
    /** Used when `tls.ca` is not given (Debian's and OpenResty images' system bundle). */
    caBundle: "/etc/ssl/certs/ca-certificates.crt",
  },
  tokenCache: { shortTtl: seconds(5), longTtl: seconds(60), negativeTtl: seconds(5) },
  costs: { read: 1, search: 3, complexSearch: 5, countThreshold: 100, countStep: 100, write: 2, export: 10, operation: 5 },
  /** A budget's burst when not given: this many seconds of its rate. */
  burstSeconds: 10,
  ratelimit: { store: "local", dictSize: megabytes(8) },
  redis: { timeout: milliseconds(50), poolSize: 16, idleTimeout: seconds(60), retryAfter: seconds(1) },
  cache: { keysZone: megabytes(10), maxSize: megabytes(256), maxEntry: megabytes(1), inactive: seconds(600), lockTimeout: seconds(1) },
  audit: {
    keyId: "default",
    queryValues: "omit",
    flushEvery: milliseconds(100),
    batchEvents: 256,
    batchBytes: kilobytes(64),
    bufferSize: megabytes(4),
    checkpointEvery: 16,
    checkpointInterval: seconds(10),
    spoolSize: megabytes(256),
    segmentSize: megabytes(4),
    atLimit: "fail-closed",
    sink: { rotateSize: megabytes(64), keep: 10, timeout: seconds(5) },
  },
  /** Lua pattern the runtime applies to a client's request id before trusting it. */
  requestIdPattern: "^[%w%._:%-]+$",
} as const;
