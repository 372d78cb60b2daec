/**
 * The policy the integration tests run: the two demo tenants by path, plus one tenant reached
 * only by Host and one only by header, so every resolution mode is exercised.
 */
import { definePolicy, seconds } from "fhir-edge";

const upstream = process.env["FHIR_EDGE_TEST_UPSTREAM"] ?? "http://127.0.0.1:8103";

export default definePolicy({
  name: process.env["FHIR_EDGE_TEST_POLICY_NAME"] ?? "integration-tests",
  resolution: { order: ["claim", "host", "path", "header"], header: "X-Tenant" },
  tenants: [
    {
      id: "acme",
      pathPrefix: "/acme",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: `${upstream}/acme/R4`, connectTimeout: seconds(2), readTimeout: seconds(10) },
      routes: [{ id: "no-export", match: { operations: ["$export"] }, action: "deny" }],
    },
    {
      id: "globex",
      pathPrefix: "/globex",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/globex/R4` },
    },
    {
      id: "hosty",
      hosts: ["hosty.test"],
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/hosty/R4` },
    },
    {
      id: "heady",
      headerValue: "heady",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/heady/R4` },
    },
    {
      // Nothing listens on port 9 of loopback: the upstream-failure tests use this tenant.
      id: "offline",
      headerValue: "offline",
      fhirBase: "/fhir",
      upstream: { url: "http://127.0.0.1:9/R4", connectTimeout: seconds(1) },
    },
  ],
});
