/**
 * The example policy `npm start` runs: two tenants on one demo upstream, told apart by path,
 * both requiring tokens from the demo oidc-provider (JWTs checked locally, opaque tokens by
 * introspection). URLs come from the environment so the demo can put its servers on any port;
 * the introspection secret always does (nginx reads it when it starts).
 */
import { definePolicy, seconds } from "fhir-edge";

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
  tenants: [
    {
      id: "acme",
      pathPrefix: "/acme",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: env("FHIR_EDGE_UPSTREAM_ACME", "http://127.0.0.1:8103/acme/R4"), connectTimeout: seconds(2), readTimeout: seconds(30) },
      issuers: ["demo"],
      routes: [{ id: "no-export", match: { operations: ["$export"] }, action: "deny" }],
    },
    {
      id: "globex",
      pathPrefix: "/globex",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: env("FHIR_EDGE_UPSTREAM_GLOBEX", "http://127.0.0.1:8103/globex/R4") },
      issuers: ["demo"],
      routes: [{ id: "expensive-search", match: { interactions: ["search-type", "search-system"], resourceTypes: ["Observation"] }, cost: "high" }],
    },
  ],
});
