import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** The settings a mode needs are there, and a TLS client certificate comes with its key. */
export const issuerMode: Check = {
  code: "FE2505",
  name: "issuer-mode",
  check(policy) {
    const out: Diagnostic[] = [];
    (policy.issuers ?? []).forEach((s, i) => {
      if (s.mode !== "jwt" && s.introspection === undefined) {
        out.push(diag("FE2505", `issuers[${i}].introspection`, `is required in ${s.mode} mode`, "give clientId and clientSecretEnv, or use mode \"jwt\""));
      }
      if (s.mode === "jwt" && s.introspection !== undefined) {
        out.push(diag("FE2505", `issuers[${i}].introspection`, "is never used in jwt mode", "use mode \"auto\" to introspect opaque tokens, or remove it"));
      }
      const tls = s.tls;
      if (tls !== undefined && (tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
        out.push(diag("FE2505", `issuers[${i}].tls`, "clientCert and clientKey go together", "mTLS needs both the certificate and its key"));
      }
    });
    return out;
  },
};
