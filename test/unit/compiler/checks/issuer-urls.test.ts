import { describe, expect, it } from "vitest";
import { issuerUrls } from "../../../../compiler/checks/issuer-urls.ts";
import type { Diagnostic } from "../../../../compiler/diagnostics.ts";
import { issuer, policy, tenant } from "../policy-builders.ts";

const lines = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);
const introspection = (endpoint: string) => ({ endpoint, clientId: "gw", clientSecretEnv: "GW_SECRET" });
const withIssuer = (over: Parameters<typeof issuer>[1]) => policy([tenant("a")], { issuers: [issuer("idp", over)] });

describe("FE2504 issuer-urls", () => {
  it("accepts https anywhere and plain http on loopback, for the issuer, the JWKS and introspection", () => {
    expect(issuerUrls.check(withIssuer({ issuer: "https://login.example.org/realms/fhir", jwksUri: "https://login.example.org:8443/certs", mode: "auto", introspection: introspection("https://login.example.org/introspect") }))).toEqual([]);
    for (const host of ["localhost", "127.0.0.1", "[::1]"]) expect(issuerUrls.check(withIssuer({ issuer: `http://${host}:8104`, jwksUri: `http://${host}:8104/jwks` }))).toEqual([]);
  });

  it("refuses plain http off loopback, at each URL's own path", () => {
    const ds = issuerUrls.check(withIssuer({ issuer: "http://login.example.org", jwksUri: "http://10.0.0.5/jwks", mode: "auto", introspection: introspection("http://login.example.org/introspect") }));
    expect(lines(ds)).toEqual([
      "FE2504 issuers[0].issuer: must use https (plain http is accepted on loopback only) (tokens and client secrets travel to this URL)",
      "FE2504 issuers[0].jwksUri: must use https (plain http is accepted on loopback only) (tokens and client secrets travel to this URL)",
      "FE2504 issuers[0].introspection.endpoint: must use https (plain http is accepted on loopback only) (tokens and client secrets travel to this URL)",
    ]);
  });

  it.each([
    ["not a url", '"not a url" is not a URL (https://host[:port]/path)'],
    ["ftp://login.example.org", 'scheme "ftp" is not supported (use https)'],
    ["https://user:pw@login.example.org", "must not carry credentials (use introspection.clientSecretEnv)"],
    ["https://login.example.org/realm?x=1", "must not have a query or fragment (scheme, host, port and path only)"],
    ["https://login.example.org/realm#top", "must not have a query or fragment (scheme, host, port and path only)"],
    ["https://login.example.org:0/realm", "port 0 is not a valid port (1-65535)"],
    ["https://login.example.org/a%20b", "path has characters nginx cannot take as is (plain path segments only)"],
  ])("refuses the issuer %s", (url, said) => {
    expect(lines(issuerUrls.check(withIssuer({ issuer: url })))).toEqual([`FE2504 issuers[0].issuer: ${said}`]);
  });
});
