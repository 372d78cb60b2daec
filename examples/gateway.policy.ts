/**
 * The example policy `npm start` runs: two tenants on one demo upstream, told apart by path.
 * Upstream URLs come from the environment so the demo can put its FHIR server on any port.
 */
import { definePolicy, seconds } from "fhir-edge";

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;

export default definePolicy({
  name: "example",
  resolution: { order: ["path"] },
  tenants: [
    {
      id: "acme",
      pathPrefix: "/acme",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: env("FHIR_EDGE_UPSTREAM_ACME", "http://127.0.0.1:8103/acme/R4"), connectTimeout: seconds(2), readTimeout: seconds(30) },
      routes: [{ id: "no-export", match: { operations: ["$export"] }, action: "deny" }],
    },
    {
      id: "globex",
      pathPrefix: "/globex",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: env("FHIR_EDGE_UPSTREAM_GLOBEX", "http://127.0.0.1:8103/globex/R4") },
      routes: [{ id: "expensive-search", match: { interactions: ["search-type", "search-system"], resourceTypes: ["Observation"] }, cost: "high" }],
    },
  ],
});
