import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

const LOOPBACK = /^(localhost|127(\.[0-9]{1,3}){3}|\[::1\])$/;

/**
 * Why an issuer or endpoint URL is unusable, or undefined. Plain http is refused except on
 * loopback: introspection sends tokens and a client secret, and JWKS decide whose signatures
 * count.
 */
export function issuerUrlProblem(raw: string): { message: string; hint: string } | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { message: `${JSON.stringify(raw)} is not a URL`, hint: "https://host[:port]/path" };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return { message: `scheme ${JSON.stringify(u.protocol.slice(0, -1))} is not supported`, hint: "use https" };
  if (u.protocol === "http:" && !LOOPBACK.test(u.hostname)) return { message: "must use https (plain http is accepted on loopback only)", hint: "tokens and client secrets travel to this URL" };
  if (u.username !== "" || u.password !== "") return { message: "must not carry credentials", hint: "use introspection.clientSecretEnv" };
  if (u.search !== "" || u.hash !== "" || raw.includes("?") || raw.includes("#")) return { message: "must not have a query or fragment", hint: "scheme, host, port and path only" };
  if (/^[a-z]+:\/\/[^/]*:0+(\/|$)/i.test(raw)) return { message: "port 0 is not a valid port", hint: "1-65535" };
  if (!/^[A-Za-z0-9._~!$&'()*+,=:@/-]*$/.test(u.pathname)) return { message: "path has characters nginx cannot take as is", hint: "plain path segments only" };
  return undefined;
}

export const issuerUrls: Check = {
  code: "FE2504",
  name: "issuer-urls",
  check(policy) {
    const out: Diagnostic[] = [];
    (policy.issuers ?? []).forEach((s, i) => {
      const urls: [string, string | undefined][] = [
        [`issuers[${i}].issuer`, s.issuer],
        [`issuers[${i}].jwksUri`, s.jwksUri],
        [`issuers[${i}].introspection.endpoint`, s.introspection?.endpoint],
      ];
      for (const [where, url] of urls) {
        if (url === undefined) continue;
        const p = issuerUrlProblem(url);
        if (p !== undefined) out.push(diag("FE2504", where, p.message, p.hint));
      }
    });
    return out;
  },
};
