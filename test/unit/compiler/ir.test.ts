import { describe, expect, it } from "vitest";
import { lowerPolicy } from "../../../compiler/ir.ts";
import { megabytes, seconds } from "../../../policy-dsl/index.ts";
import { policy, tenant } from "./policy-builders.ts";

describe("lowering to the IR", () => {
  it("applies every default", () => {
    const ir = lowerPolicy(policy([tenant("acme")]));
    expect(ir).toEqual({
      ir_version: 1,
      version: "",
      name: "test",
      resolution: { order: ["claim", "host", "path", "header"], header: "X-Tenant", claim: "tenant" },
      strip_headers: ["x-tenant-id", "x-user-id", "x-patient-id", "x-fhir-patient", "x-client-id", "x-scopes", "x-policy-version", "x-forwarded-user", "x-remote-user", "x-auth-request-user"],
      request_id: { header: "X-Request-ID", pattern: "^[%w%._:%-]+$" },
      limits: { max_body_bytes: 16 * 1024 * 1024 },
      metrics: { max_series: 2000 },
      tenants: [
        {
          id: "acme",
          hosts: [],
          path_prefix: "/acme",
          header_value: null,
          fhir_base: "/fhir",
          fhir_versions: [],
          upstream: { name: "fe_up_acme", scheme: "http", host: "127.0.0.1", port: 8103, base_path: "/acme/R4", keepalive: 32, connect_timeout_ms: 2000, read_timeout_ms: 30_000 },
          routes: [],
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
            routes: [{ id: "r", match: { operations: ["$export"] }, action: "deny", cost: "high" }, { id: "s", match: {} }],
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
      { id: "r", match: { interactions: null, resource_types: null, operations: ["$export"] }, action: "deny", cost: "high" },
      { id: "s", match: { interactions: null, resource_types: null, operations: null }, action: "allow", cost: null },
    ]);
    expect(ir.strip_headers.filter((h) => h === "x-user-id")).toHaveLength(1);
    expect(ir.strip_headers).toContain("x-internal");
    expect(ir.limits.max_body_bytes).toBe(1024 * 1024);
    expect(ir.resolution.order).toEqual(["header"]);
  });

  it("gives the root path as an empty base path", () => {
    expect(lowerPolicy(policy([tenant("a", { upstream: { url: "http://u:81/" } })])).tenants[0]?.upstream).toMatchObject({ host: "u", port: 81, base_path: "" });
  });
});
