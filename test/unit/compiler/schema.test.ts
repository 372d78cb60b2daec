import { describe, expect, it } from "vitest";
import { formatDiagnostic } from "../../../compiler/diagnostics.ts";
import { validatePolicySchema, validateTenantYamlSchema } from "../../../compiler/schema.ts";

describe("policy JSON Schema (FE1xxx)", () => {
  it("maps ajv errors to policy paths, all at once", () => {
    const ds = validatePolicySchema({
      name: "p",
      tenants: [
        { id: "ok", pathPrefix: "/ok", upstream: { url: "http://u" } },
        { id: "Bad_Id", pathPrefix: "/x/", upstream: { url: "http://u", readTimeout: 30, keepalive: -1 }, colour: "blue" },
        { id: "no-upstream", pathPrefix: "/n" },
      ],
      limits: { maxBody: 10 },
    }).map(formatDiagnostic);
    expect(ds).toEqual(
      expect.arrayContaining([
        "FE1002 tenants[1].colour: is not a known property",
        expect.stringMatching(/^FE1005 tenants\[1\]\.id: must be/),
        expect.stringMatching(/^FE1005 tenants\[1\]\.pathPrefix: must be \/segment/),
        "FE1003 tenants[1].upstream.readTimeout: must be object (hint: seconds(n) or milliseconds(n))",
        "FE1006 tenants[1].upstream.keepalive: must be >= 0",
        "FE1001 tenants[2].upstream: is required",
        "FE1003 limits.maxBody: must be object (hint: kilobytes(n) or megabytes(n))",
      ]),
    );
    expect(ds).toHaveLength(7);
  });

  it("accepts a minimal policy", () => {
    expect(validatePolicySchema({ name: "p", tenants: [] })).toEqual([]);
  });

  it("validates the YAML tenant form under the merged path", () => {
    expect(validateTenantYamlSchema({ id: "y", upstream: { url: "http://u", connectTimeout: "2s", readTimeout: 500 } }, ["tenants", 3])).toEqual([]);
    const ds = validateTenantYamlSchema({ id: "y", upstream: { url: "http://u", connectTimeout: "2 seconds" } }, ["tenants", 3]);
    expect(ds.map(formatDiagnostic)).toEqual(['FE1003 tenants[3].upstream.connectTimeout: must be milliseconds as a number, or "250ms", "2s", "1.5m"']);
  });
});
