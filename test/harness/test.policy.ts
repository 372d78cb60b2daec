/**
 * The policy the integration tests run: the two demo tenants by path, plus one tenant reached
 * only by Host and one only by header, so every resolution mode is exercised. Those serve
 * without tokens; `secure` (acme's data) and `jwt` require tokens from the demo oidc-provider.
 */
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { definePolicy, perSecond, seconds, tokens, type BudgetProps, type TenantCacheProps } from "fhir-edge";
import { TEST_AUDIENCE, TEST_JWKS_REFETCH_S, TEST_NEGATIVE_TTL_S, TEST_SHORT_TTL_S, TEST_SKEW_S } from "./auth-constants.ts";

/**
 * The audit trail is on for the whole shared stack, so every integration test runs the log
 * phase's event, the flush timers and the shipper, and the error-log guard watches them. The
 * key is the test run's own, made on first use.
 */
const auditKey = process.env["FHIR_EDGE_TEST_AUDIT_KEY"] ?? path.join(tmpdir(), "fhir-edge-test-audit.key");
if (!existsSync(auditKey)) writeFileSync(auditKey, randomBytes(32).toString("hex"), { mode: 0o600 });

const upstream = process.env["FHIR_EDGE_TEST_UPSTREAM"] ?? "http://127.0.0.1:8103";
const issuer = process.env["FHIR_EDGE_TEST_ISSUER"] ?? "http://127.0.0.1:8104";
const mtlsUrl = process.env["FHIR_EDGE_TEST_MTLS_URL"] ?? "https://127.0.0.1:8105";
const mtlsDir = process.env["FHIR_EDGE_TEST_MTLS_DIR"] ?? "/tmp/fhir-edge-mtls";
/**
 * FHIR_EDGE_TEST_BUDGETS=on (the JIT trace test): budgets on secure and acme that every request
 * spends from and none refuses, so the limiter runs on the traced request path. Off for the
 * shared stack, whose tests assert on headers and counts of their own.
 */
const budgets = (per: BudgetProps["per"]): BudgetProps[] | undefined =>
  process.env["FHIR_EDGE_TEST_BUDGETS"] === "on"
    ? [
        { id: "wide", per, rate: perSecond(1_000_000), burst: tokens(100_000_000) },
        { id: "per-class", per: ["class"], rate: perSecond(1_000_000), burst: tokens(100_000_000) },
      ]
    : undefined;

/**
 * FHIR_EDGE_TEST_CACHE=on (the JIT trace test): the response cache on secure and acme for the
 * types the burst reads, so the cache step runs on the traced path too.
 */
const cache: TenantCacheProps | undefined =
  process.env["FHIR_EDGE_TEST_CACHE"] === "on" ? { ttl: { metadata: seconds(60), Patient: seconds(60), Observation: seconds(60), Condition: seconds(60), Encounter: seconds(60) } } : undefined;

export default definePolicy({
  name: process.env["FHIR_EDGE_TEST_POLICY_NAME"] ?? "integration-tests",
  resolution: { order: ["claim", "host", "path", "header"], header: "X-Tenant" },
  issuers: [
    {
      id: "demo",
      issuer,
      audiences: [TEST_AUDIENCE],
      mode: "auto",
      clockSkew: seconds(TEST_SKEW_S),
      timeout: seconds(2),
      jwksRefetchInterval: seconds(TEST_JWKS_REFETCH_S),
      introspection: { clientId: "fhir-edge-gateway", clientSecretEnv: "FHIR_EDGE_TEST_INTROSPECTION_SECRET" },
    },
    {
      // The same server, but only its JWTs: opaque tokens are refused without a call. Its JWKS
      // URL is configured (demo finds its own by discovery).
      id: "demo-jwt",
      issuer,
      jwksUri: `${issuer}/jwks`,
      audiences: [TEST_AUDIENCE],
      mode: "jwt",
      algs: ["ES256"],
      clockSkew: seconds(TEST_SKEW_S),
      jwksRefetchInterval: seconds(TEST_JWKS_REFETCH_S),
    },
    {
      // Introspection only, over mTLS: the gateway presents its client certificate.
      id: "demo-mtls",
      issuer,
      audiences: [TEST_AUDIENCE],
      mode: "introspection",
      introspection: { endpoint: `${mtlsUrl}/token/introspection`, clientId: "fhir-edge-gateway", clientSecretEnv: "FHIR_EDGE_TEST_INTROSPECTION_SECRET" },
      tls: { ca: `${mtlsDir}/ca.pem`, clientCert: `${mtlsDir}/client.pem`, clientKey: `${mtlsDir}/client-key.pem` },
    },
  ],
  audit: {
    keyFile: auditKey,
    queryValues: "hmac",
    durable: ["write", "break-glass"],
    sinks: [
      { id: "file", kind: "file" },
      { id: "ckpt", kind: "file", records: "checkpoints" },
    ],
  },
  tokenCache: { shortTtl: seconds(TEST_SHORT_TTL_S), longTtl: seconds(60), negativeTtl: seconds(TEST_NEGATIVE_TTL_S) },
  tenants: [
    {
      id: "secure",
      pathPrefix: "/secure",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/acme/R4` },
      issuers: ["demo"],
      operations: [{ name: "$everything", permission: "r" }],
      budgets: budgets(["client_id"]),
      cache,
      routes: [
        { id: "keeps-token", match: { resourceTypes: ["Basic"] }, keepAuthorization: true },
        // Condition searches may use a validation for the long TTL, so a repeat test outlasts
        // the short one without the token (and its verdict memo) being validated afresh.
        { id: "long-token-conditions", match: { interactions: ["search-type"], resourceTypes: ["Condition"] }, tokenCacheClass: "long" },
      ],
    },
    {
      id: "jwt",
      pathPrefix: "/jwt",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/globex/R4` },
      issuers: ["demo-jwt"],
    },
    {
      // Scopes in shadow mode: would-be denials are counted and the request goes through.
      id: "shadow",
      pathPrefix: "/shadow",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/acme/R4` },
      issuers: ["demo"],
      authorization: "shadow",
    },
    {
      // A patient search that names no patient gets the patient added instead of a 403.
      id: "inject",
      pathPrefix: "/inject",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/acme/R4` },
      issuers: ["demo"],
      compartmentSearch: "inject",
    },
    {
      // A practitioner app stays on the patient in context (compartmentFor), except when it
      // breaks glass: then it reaches every patient, and Conditions too.
      id: "clinic",
      pathPrefix: "/clinic",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/acme/R4` },
      issuers: ["demo"],
      compartmentFor: ["user"],
      invalidScopes: "reject",
      breakGlass: { reasons: ["emergency", "patient-unconscious"], scopes: ["user/Condition.rs"] },
      cache: { ttl: { Observation: seconds(60) } },
    },
    {
      id: "mtls",
      pathPrefix: "/mtls",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/acme/R4` },
      issuers: ["demo-mtls"],
    },
    {
      id: "acme",
      pathPrefix: "/acme",
      fhirBase: "/fhir",
      fhirVersions: ["R4"],
      upstream: { url: `${upstream}/acme/R4`, connectTimeout: seconds(2), readTimeout: seconds(10) },
      routes: [{ id: "no-export", match: { operations: ["$export"] }, action: "deny" }],
      anonymous: true,
      budgets: budgets(["tenant"]),
      cache,
    },
    {
      id: "globex",
      pathPrefix: "/globex",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/globex/R4` },
      anonymous: true,
    },
    {
      id: "hosty",
      hosts: ["hosty.test"],
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/hosty/R4` },
      anonymous: true,
    },
    {
      id: "heady",
      headerValue: "heady",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/heady/R4` },
      anonymous: true,
    },
    {
      // Nothing listens on port 9 of loopback: the upstream-failure tests use this tenant.
      id: "offline",
      headerValue: "offline",
      fhirBase: "/fhir",
      upstream: { url: "http://127.0.0.1:9/R4", connectTimeout: seconds(1) },
      anonymous: true,
    },
  ],
});
