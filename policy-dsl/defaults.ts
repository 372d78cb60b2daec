import { RESOLUTION_MODES } from "./constants.ts";
import { megabytes, seconds } from "./units.ts";

/** Every default of the policy API in one place; the TSDoc on the props repeats these. */
export const DEFAULTS = {
  resolution: { order: RESOLUTION_MODES, header: "X-Tenant", claim: "tenant" },
  fhirBase: "/fhir",
  upstream: { keepalive: 32, connectTimeout: seconds(2), readTimeout: seconds(30) },
  routeAction: "allow",
  maxBody: megabytes(16),
  maxSeries: 2000,
  requestIdHeader: "X-Request-ID",
  /** Lua pattern the runtime applies to a client's request id before trusting it. */
  requestIdPattern: "^[%w%._:%-]+$",
} as const;
