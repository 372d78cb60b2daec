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

/**
 * What a budget can tell requests apart by: the classes below group the interactions.
 * - read: read, vread, instance history;
 * - search: every search, type and system history;
 * - write: create, update, patch, delete (a batch or transaction spends by its entries: its
 *   searches from search budgets, its reads from read budgets, and so on);
 * - export: `$export` at any level;
 * - operation: every other operation.
 * metadata and .well-known/smart-configuration cost nothing and belong to no class.
 */
export const INTERACTION_CLASSES = ["read", "search", "write", "export", "operation"] as const;
export type InteractionClass = (typeof INTERACTION_CLASSES)[number];

/** What one bucket of a budget is for: each distinct combination of these values has its own. */
export const BUDGET_KEYS = ["tenant", "client_id", "sub", "patient", "class"] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];

export const RATELIMIT_STORES = ["local", "redis"] as const;
export type RateLimitStore = (typeof RATELIMIT_STORES)[number];

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
  "x-break-glass",
] as const;

/**
 * Types with no patient data: conformance and terminology resources, and `metadata` (the
 * CapabilityStatement). A tenant's cache shares the ones it caches tenant-wide by default.
 */
export const SHARED_TYPES = [
  "metadata",
  "CapabilityStatement",
  "CodeSystem",
  "CompartmentDefinition",
  "ConceptMap",
  "ImplementationGuide",
  "NamingSystem",
  "OperationDefinition",
  "SearchParameter",
  "StructureDefinition",
  "StructureMap",
  "TerminologyCapabilities",
  "ValueSet",
] as const;
