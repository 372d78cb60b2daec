import { describe, expect, it } from "vitest";
import { lowerPolicy } from "../../../compiler/ir.ts";
import { megabytes, milliseconds, perMinute, seconds } from "../../../policy-dsl/index.ts";
import { policy, tenant } from "./policy-builders.ts";

describe("lowering to the IR", () => {
  it("applies every default", () => {
    const ir = lowerPolicy(policy([tenant("acme")]));
    expect(ir).toEqual({
      ir_version: 1,
      version: "",
      name: "test",
      resolution: { order: ["claim", "host", "path", "header"], header: "X-Tenant", claim: "tenant" },
      strip_headers: ["x-tenant-id", "x-user-id", "x-patient-id", "x-fhir-patient", "x-client-id", "x-scopes", "x-policy-version", "x-forwarded-user", "x-remote-user", "x-auth-request-user", "x-break-glass"],
      request_id: { header: "X-Request-ID", pattern: "^[%w%._:%-]+$" },
      limits: { max_body_bytes: 16 * 1024 * 1024, max_query_params: 100 },
      ratelimit: { store: "local", dict_bytes: 8 * 1024 * 1024, redis: null },
      metrics: { max_series: 2000 },
      cache: null,
      audit: null,
      token_cache: { short_s: 5, long_s: 60, negative_s: 5 },
      issuers: [],
      idp_locations: [],
      tenants: [
        {
          id: "acme",
          hosts: [],
          path_prefix: "/acme",
          header_value: null,
          fhir_base: "/fhir",
          fhir_versions: [],
          upstream: { name: "fe_up_acme", scheme: "http", host: "127.0.0.1", port: 8103, base_path: "/acme/R4", keepalive: 32, connect_timeout_ms: 2000, read_timeout_ms: 30_000 },
          issuers: [],
          anonymous: true,
          authorization: "enforce",
          operations: {},
          compartment_search: "refuse",
          compartment_for: {},
          reject_invalid_scopes: false,
          routes: [],
          costs: { read: 1, search: 3, complex_search: 5, count_threshold: 100, count_step: 100, write: 2, export: 10, operation: 5, operations: {} },
          budgets: [],
          cache: null,
          break_glass: null,
        },
      ],
    });
  });

  it("keeps explicit values and normalises case, ports and trailing slashes", () => {
    const ir = lowerPolicy(
      policy(
        [
          tenant("a", {
            pathPrefix: undefined,
            hosts: ["API.Example.org"],
            headerValue: "a",
            upstream: { url: "https://Fhir.Example.org/base/", keepalive: 0, readTimeout: seconds(5) },
            routes: [{ id: "r", match: { operations: ["$export"] }, action: "deny", cost: 8 }, { id: "s", match: {} }],
          }),
        ],
        { stripHeaders: ["X-Internal", "x-user-id"], limits: { maxBody: megabytes(1) }, resolution: { order: ["header"] } },
      ),
    );
    const t = ir.tenants[0];
    expect(t?.hosts).toEqual(["api.example.org"]);
    expect(t?.path_prefix).toBeNull();
    expect(t?.upstream).toMatchObject({ scheme: "https", host: "fhir.example.org", port: 443, base_path: "/base", keepalive: 0, read_timeout_ms: 5000 });
    expect(t?.routes).toEqual([
      { id: "r", match: { interactions: null, resource_types: null, operations: ["$export"] }, action: "deny", cost: 8, keep_authorization: false, token_cache_class: null, authorization: null },
      { id: "s", match: { interactions: null, resource_types: null, operations: null }, action: "allow", cost: null, keep_authorization: false, token_cache_class: null, authorization: null },
    ]);
    expect(ir.strip_headers.filter((h) => h === "x-user-id")).toHaveLength(1);
    expect(ir.strip_headers).toContain("x-internal");
    expect(ir.limits.max_body_bytes).toBe(1024 * 1024);
    expect(ir.resolution.order).toEqual(["header"]);
  });

  it("lowers break-glass: the default scope, the reasons as a set and in order, the added scopes as one string", () => {
    const ir = lowerPolicy(
      policy([
        tenant("a", { breakGlass: { reasons: ["emergency", "patient-unconscious"] } }),
        tenant("b", { breakGlass: { scope: "org:btg", reasons: ["emergency"], scopes: ["user/*.rs", "user/Condition.rs"] } }),
      ]),
    );
    expect(ir.tenants.map((t) => t.break_glass)).toEqual([
      { scope: "break-glass", reasons: { emergency: true, "patient-unconscious": true }, reason_list: "emergency, patient-unconscious", scopes: "" },
      { scope: "org:btg", reasons: { emergency: true }, reason_list: "emergency", scopes: "user/*.rs user/Condition.rs" },
    ]);
  });

  it("gives the root path as an empty base path", () => {
    expect(lowerPolicy(policy([tenant("a", { upstream: { url: "http://u:81/" } })])).tenants[0]?.upstream).toMatchObject({ host: "u", port: 81, base_path: "" });
  });

  it("lowers issuers: defaults, one internal location per origin, discovery when endpoints are not given", () => {
    const ir = lowerPolicy(
      policy([tenant("a", { anonymous: undefined, issuers: ["idp", "okta"] })], {
        issuers: [
          { id: "idp", issuer: "http://127.0.0.1:8104", audiences: ["https://fhir"], mode: "jwt" },
          {
            id: "okta",
            issuer: "https://id.example.org/oauth2/default/",
            audiences: ["api://fhir"],
            mode: "auto",
            clockSkew: seconds(5),
            jwksUri: "https://keys.example.org/jwks",
            introspection: { endpoint: "https://id.example.org/oauth2/v1/introspect", clientId: "gw", clientSecretEnv: "OKTA_SECRET" },
            tls: { ca: "/etc/ca.pem", clientCert: "/etc/c.pem", clientKey: "/etc/k.pem" },
          },
        ],
        tokenCache: { shortTtl: seconds(2), longTtl: seconds(30), negativeTtl: seconds(1) },
      }),
    );
    expect(ir.tenants[0]).toMatchObject({ issuers: ["idp", "okta"], anonymous: false });
    expect(ir.token_cache).toEqual({ short_s: 2, long_s: 30, negative_s: 1 });
    expect(ir.issuers[0]).toEqual({
      id: "idp",
      issuer: "http://127.0.0.1:8104",
      audiences: ["https://fhir"],
      mode: "jwt",
      algs: ["RS256", "PS256", "ES256"],
      skew_s: 60,
      timeout_ms: 3000,
      jwks_refetch_s: 30,
      jwks_max_age_s: 3600,
      patient_claim: "patient",
      origin_loc: "/__fe_idp/0-0",
      discovery_path: "/.well-known/openid-configuration",
      jwks: null,
      introspection: null,
    });
    expect(ir.issuers[1]).toMatchObject({
      skew_s: 5,
      origin_loc: "/__fe_idp/1-0",
      discovery_path: "/oauth2/default/.well-known/openid-configuration",
      jwks: { loc: "/__fe_idp/1-1", path: "/jwks" },
      introspection: { endpoint: { loc: "/__fe_idp/1-0", path: "/oauth2/v1/introspect" }, client_id: "gw", secret_env: "OKTA_SECRET" },
    });
    expect(ir.idp_locations).toEqual([
      { loc: "/__fe_idp/0-0", origin: "http://127.0.0.1:8104", scheme: "http", host: "127.0.0.1", host_header: "127.0.0.1:8104", timeout_ms: 3000, tls: null },
      { loc: "/__fe_idp/1-0", origin: "https://id.example.org", scheme: "https", host: "id.example.org", host_header: "id.example.org", timeout_ms: 3000, tls: { ca: "/etc/ca.pem", client_cert: "/etc/c.pem", client_key: "/etc/k.pem" } },
      { loc: "/__fe_idp/1-1", origin: "https://keys.example.org", scheme: "https", host: "keys.example.org", host_header: "keys.example.org", timeout_ms: 3000, tls: { ca: "/etc/ca.pem", client_cert: "/etc/c.pem", client_key: "/etc/k.pem" } },
    ]);
  });

  it("lowers caches: one location per distinct freshness, shared types by default, TTLs in whole seconds", () => {
    const ir = lowerPolicy(
      policy(
        [
          tenant("a", { cache: { ttl: { ValueSet: seconds(300), Observation: milliseconds(1500), metadata: seconds(300) } } }),
          tenant("b", { cache: { ttl: { ValueSet: seconds(300), Condition: seconds(2) }, shared: [], notFoundTtl: seconds(10), missBudget: { id: "m", rate: perMinute(60) } } }),
          tenant("c"),
        ],
        { cache: { keysZone: megabytes(2), inactive: seconds(30) } },
      ),
    );
    expect(ir.cache).toEqual({
      keys_zone_bytes: 2 * 1024 * 1024,
      max_size_bytes: 256 * 1024 * 1024,
      max_entry_bytes: 1024 * 1024,
      inactive_s: 30,
      lock_timeout_ms: 1000,
      locations: [
        { loc: "/__fe_cache/0", ttl_s: 300, not_found_s: null, stale: false },
        { loc: "/__fe_cache/1", ttl_s: 2, not_found_s: null, stale: false },
        { loc: "/__fe_cache/2", ttl_s: 300, not_found_s: 10, stale: false },
        { loc: "/__fe_cache/3", ttl_s: 2, not_found_s: 10, stale: false },
      ],
    });
    expect(ir.tenants[0]!.cache).toEqual({
      types: { ValueSet: { loc: "/__fe_cache/0", shared: true }, Observation: { loc: "/__fe_cache/1", shared: false }, metadata: { loc: "/__fe_cache/0", shared: true } },
      miss_budget: null,
    });
    expect(ir.tenants[1]!.cache).toEqual({
      types: { ValueSet: { loc: "/__fe_cache/2", shared: false }, Condition: { loc: "/__fe_cache/3", shared: false } },
      miss_budget: { id: "m", per: [], classes: null, rate: 1, burst: 10, shadow: false },
    });
    expect(ir.tenants[2]!.cache).toBeNull();
    expect(lowerPolicy(policy([tenant("c")])).cache).toBeNull();
  });
});
