import { describe, expect, it } from "vitest";
import { issuerMode } from "../../../../compiler/checks/issuer-mode.ts";
import type { Diagnostic } from "../../../../compiler/diagnostics.ts";
import { issuer, policy, tenant } from "../policy-builders.ts";

const lines = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.code} ${d.path}: ${d.message} (${d.hint ?? ""})`);
const introspection = { clientId: "gw", clientSecretEnv: "GW_SECRET" };
const withIssuers = (...issuers: ReturnType<typeof issuer>[]) => policy([tenant("a")], { issuers });

describe("FE2505 issuer-mode", () => {
  it("accepts jwt without introspection, auto and introspection with it, and mTLS with both halves", () => {
    const p = withIssuers(
      issuer("a", { mode: "jwt" }),
      issuer("b", { mode: "auto", introspection }),
      issuer("c", { mode: "introspection", introspection, tls: { ca: "/etc/ca.pem", clientCert: "/etc/gw.pem", clientKey: "/etc/gw-key.pem" } }),
      issuer("d", { tls: { ca: "/etc/ca.pem" } }),
    );
    expect(issuerMode.check(p)).toEqual([]);
  });

  it("refuses auto and introspection modes without introspection settings", () => {
    expect(lines(issuerMode.check(withIssuers(issuer("a"), issuer("b", { mode: "auto" }), issuer("c", { mode: "introspection" }))))).toEqual([
      'FE2505 issuers[1].introspection: is required in auto mode (give clientId and clientSecretEnv, or use mode "jwt")',
      'FE2505 issuers[2].introspection: is required in introspection mode (give clientId and clientSecretEnv, or use mode "jwt")',
    ]);
  });

  it("refuses introspection settings that jwt mode would never use", () => {
    expect(lines(issuerMode.check(withIssuers(issuer("a", { mode: "jwt", introspection }))))).toEqual(['FE2505 issuers[0].introspection: is never used in jwt mode (use mode "auto" to introspect opaque tokens, or remove it)']);
  });

  it("refuses a client certificate without its key, and a key without its certificate", () => {
    expect(lines(issuerMode.check(withIssuers(issuer("a", { tls: { clientCert: "/etc/gw.pem" } }), issuer("b", { tls: { clientKey: "/etc/gw-key.pem" } }))))).toEqual([
      "FE2505 issuers[0].tls: clientCert and clientKey go together (mTLS needs both the certificate and its key)",
      "FE2505 issuers[1].tls: clientCert and clientKey go together (mTLS needs both the certificate and its key)",
    ]);
  });
});
