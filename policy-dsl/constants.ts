/** FHIR interactions a route can match, as the runtime's classifier names them. */
export const INTERACTIONS = [
  "read",
  "vread",
  "update",
  "patch",
  "delete",
  "history-instance",
  "history-type",
  "history-system",
  "create",
  "search-type",
  "search-system",
  "search-compartment",
  "capabilities",
  "smart-configuration",
  "batch",
  "transaction",
  "operation-system",
  "operation-type",
  "operation-instance",
] as const;
export type Interaction = (typeof INTERACTIONS)[number];

export const RESOLUTION_MODES = ["claim", "host", "path", "header"] as const;
export type ResolutionMode = (typeof RESOLUTION_MODES)[number];

export const COST_CLASSES = ["low", "medium", "high"] as const;
export type CostClass = (typeof COST_CLASSES)[number];

export type RouteAction = "allow" | "deny";

/**
 * Client headers that only the gateway may set. They are always stripped; `stripHeaders` adds
 * to this list and cannot remove from it.
 */
export const BUILTIN_STRIP_HEADERS = [
  "x-tenant-id",
  "x-user-id",
  "x-patient-id",
  "x-fhir-patient",
  "x-client-id",
  "x-scopes",
  "x-policy-version",
  "x-forwarded-user",
  "x-remote-user",
  "x-auth-request-user",
] as const;
