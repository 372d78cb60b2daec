/**
 * The integration tests' handle on the demo oidc-provider the global setup started: minting
 * real tokens with the demo client, and its test hooks (counters, key rotation, forging,
 * outages) over HTTP, since the server lives in another process.
 */
import { createPublicKey, createHmac, randomBytes } from "node:crypto";
import { mintTokenHttp, type MintRequest, type TokenAlg } from "../../demo/authz.ts";
import { stack } from "./env.ts";
import { TEST_AUDIENCE } from "./auth-constants.ts";

export interface Counters {
  jwks: number;
  introspection: number;
  token: number;
  discovery: number;
}

export function mint(req: Omit<MintRequest, "tenant"> & { tenant?: string }): Promise<string> {
  const a = stack().authz;
  return mintTokenHttp(a.tokenEndpoint, a.demoClient.id, a.demoClient.secret, { tenant: "secure", ...req });
}

async function hook<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack().authz.issuer}/__admin/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  if (!res.ok) throw new Error(`authz hook ${path}: ${res.status}`);
  return (await res.json()) as T;
}

export const counters = (): Promise<Counters> => hook("GET", "counters");
export const resetCounters = (): Promise<unknown> => hook("DELETE", "counters");
export const rotateKeys = (): Promise<{ kids: string[] }> => hook("POST", "rotate");
export const pauseAuthz = (ms: number): Promise<unknown> => hook("POST", `pause?ms=${ms}`);
export const slowIntrospection = (delayMs: number, forMs: number): Promise<unknown> => hook("POST", `slow?delay=${delayMs}&for=${forMs}`);

/** A JWT signed with the server's current key, with any claims at all. */
export async function forge(claims: Record<string, unknown>, alg: TokenAlg = "RS256"): Promise<string> {
  return (await hook<{ token: string }>("POST", "sign", { claims, alg })).token;
}

/** Claims of a token the gateway should accept, apart from what a test overrides. */
export function goodClaims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: stack().authz.issuer, aud: TEST_AUDIENCE, iat: now, exp: now + 600, client_id: "demo-app", scope: "patient/*.rs", tenant: "secure", jti: randomBytes(8).toString("hex"), ...over };
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");

/** An unsigned token (`alg: none`), as an attacker would send it. */
export function algNone(claims: Record<string, unknown>, kid: string): string {
  return `${b64({ alg: "none", kid, typ: "at+jwt" })}.${b64(claims)}.`;
}

/** A token with any header and a signature that verifies against nothing. */
export function withHeader(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${b64(header)}.${b64(claims)}.${randomBytes(256).toString("base64url")}`;
}

/** HS256 keyed with the issuer's RSA public key (PEM), the classic alg-confusion attack. */
export async function algConfusion(claims: Record<string, unknown>): Promise<string> {
  const jwks = (await (await fetch(`${stack().authz.issuer}/jwks`)).json()) as { keys: (Record<string, unknown> & { kid: string; kty: string })[] };
  const rsa = jwks.keys.find((k) => k.kty === "RSA");
  if (rsa === undefined) throw new Error("no RSA key in the JWKS");
  const pem = createPublicKey({ key: rsa as never, format: "jwk" }).export({ type: "spki", format: "pem" });
  const input = `${b64({ alg: "HS256", kid: rsa.kid, typ: "at+jwt" })}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", pem).update(input).digest("base64url")}`;
}
