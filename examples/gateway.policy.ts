/**
 * The example policy `npm start` runs: two tenants on one demo upstream, told apart by path,
 * both requiring tokens from the demo oidc-provider (JWTs checked locally, opaque tokens by
 * introspection). URLs come from the environment so the demo can put its servers on any port;
 * the introspection secret always does (nginx reads it when it starts).
 */
import { definePolicy, perHour, perMinute, seconds, tokens } from "fhir-edge";

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;

export default definePolicy({
  name: "example",
  resolution: { order: ["claim", "path"] },
  issuers: [
    {
      id: "demo",
      issuer: env("FHIR_EDGE_DEMO_ISSUER", "http://127.0.0.1:8104"),
      audiences: ["https://fhir-edge.local/fhir"],
      mode: "auto",
      introspection: { clientId: "fhir-edge-gateway", clientSecretEnv: "FHIR_EDGE_DEMO_INTROSPECTION_SECRET" },
    },
  ],
  // The audit trail: every request's PHI-free event, hash-chained in a local spool, shipped to
  // a JSONL file in the state dir (and its signed checkpoints to a file of their own) and, as
  // IHE BALP AuditEvents, to a FHIR server. Writes and break-glass requests reach the spool
  // before their response.
  audit: {
    keyFile: env("FHIR_EDGE_AUDIT_KEY", "/etc/fhir-edge/audit.key"),
    durable: ["write", "break-glass"],
    sinks: [
      { id: "file", kind: "file" },
      { id: "checkpoints", kind: "file", records: "checkpoints" },
      { id: "fhir", kind: "fhir", url: env("FHIR_EDGE_AUDIT_FHIR_URL", "http://127.0.0.1:8103/audit/R4") },
    ],
  },
  tenants: [
    {
      id: "acme",
      pathPrefix: "/acme",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: env("FHIR_EDGE_UPSTREAM_ACME", "http://127.0.0.1:8103/acme/R4"), connectTimeout: seconds(2), readTimeout: seconds(30) },
      issuers: ["demo"],
      routes: [{ id: "no-export", match: { operations: ["$export"] }, action: "deny" }],
      // In an emergency, a token with the `break-glass` scope may send `X-Break-Glass: <reason>`
      // and read every type (user/*.rs) for that request; its audit event says so.
      breakGlass: { reasons: ["emergency", "patient-unconscious", "care-team-absent"], scopes: ["user/*.rs"] },
      budgets: [
        // Each app (client_id) may spend 600 cost tokens a minute, 120 at once: a chart of 12
        // reads costs 12, a search with _include 5.
        { id: "per-client", per: ["client_id"], rate: perMinute(600), burst: tokens(120) },
        // And the tenant as a whole, whatever the apps: what the FHIR server is sized for.
        { id: "tenant", rate: perMinute(6000), burst: tokens(600) },
      ],
      cache: {
        // Terminology and the CapabilityStatement hold no PHI: one entry for the whole tenant
        // (they are in the default shared types). Observations are cached per patient, for
        // as long as a chart view lasts; a write through the gateway invalidates them at once.
        ttl: { ValueSet: seconds(3600), CodeSystem: seconds(3600), metadata: seconds(300), Observation: seconds(30) },
        // Misses per app: what reaches the FHIR server when an app thrashes the cache.
        missBudget: { id: "misses", per: ["client_id"], rate: perMinute(300), burst: tokens(60) },
      },
    },
    {
      id: "globex",
      pathPrefix: "/globex",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: env("FHIR_EDGE_UPSTREAM_GLOBEX", "http://127.0.0.1:8103/globex/R4") },
      issuers: ["demo"],
      // An Observation search costs this server 8 cost tokens, not the default 3.
      routes: [{ id: "expensive-search", match: { interactions: ["search-type", "search-system"], resourceTypes: ["Observation"] }, cost: 8 }],
      budgets: [
        // Searches of the whole tenant: 30 tokens at once, 120 a minute (3 Observation searches
        // at once, then one every 4 s); reads are not held to it.
        { id: "searches", classes: ["search"], rate: perMinute(120), burst: tokens(30) },
        // $export kick-offs per app: 2 at once, then 1 an hour.
        { id: "exports", per: ["client_id"], classes: ["export"], rate: perHour(10), burst: tokens(20) },
      ],
    },
  ],
});
