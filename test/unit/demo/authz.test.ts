import { createPublicKey, verify, type JsonWebKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthz, type Authz } from "../../../demo/authz.ts";

let authz: Authz;
beforeAll(async () => {
  authz = await startAuthz({ port: 0 });
});
afterAll(async () => authz.close());

const b64json = (s: string): Record<string, unknown> => JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as Record<string, unknown>;

async function verifyJwt(token: string): Promise<{ header: Record<string, unknown>; payload: Record<string, unknown> }> {
  const [h = "", p = "", s = ""] = token.split(".");
  const header = b64json(h);
  const { keys } = (await (await fetch(authz.jwksUri)).json()) as { keys: (JsonWebKey & { kid: string })[] };
  const jwk = keys.find((k) => k.kid === header["kid"]);
  if (jwk === undefined) throw new Error(`kid ${String(header["kid"])} not in JWKS`);
  expect(jwk.d).toBeUndefined(); // JWKS must never publish private parts
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, "base64url");
  const alg = header["alg"];
  const ok =
    alg === "RS256"
      ? verify("sha256", data, key, sig)
      : alg === "PS256"
        ? verify("sha256", data, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }, sig)
        : alg === "ES256"
          ? verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, sig)
          : false;
  if (!ok) throw new Error(`signature does not verify for ${String(alg)}`);
  return { header, payload: b64json(p) };
}

const introspect = async (token: string, secret = authz.introspectionClient.secret): Promise<Response> =>
  fetch(authz.introspectionEndpoint, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${authz.introspectionClient.id}:${secret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ token }),
  });

describe("demo authorization server", () => {
  it.each(["RS256", "PS256", "ES256"] as const)("issues %s JWT access tokens that verify against its JWKS", async (alg) => {
    const token = await authz.mintToken({ tenant: "acme", scope: "patient/Observation.rs launch/patient", patient: "acme-p1", fhirUser: "Practitioner/7", alg, expiresIn: 120 });
    const { header, payload } = await verifyJwt(token);
    expect(header["alg"]).toBe(alg);
    expect(payload).toMatchObject({
      iss: authz.issuer,
      aud: authz.audience,
      tenant: "acme",
      patient: "acme-p1",
      fhirUser: "Practitioner/7",
      scope: "patient/Observation.rs launch/patient",
      client_id: authz.demoClient.id,
    });
    expect((payload["exp"] as number) - (payload["iat"] as number)).toBe(120);
  });

  it("detects a tampered JWT", async () => {
    const token = await authz.mintToken({ tenant: "acme", scope: "system/*.read" });
    const [h, , s] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...b64json(token.split(".")[1] ?? ""), tenant: "globex" })).toString("base64url");
    await expect(verifyJwt(`${h}.${forged}.${s}`)).rejects.toThrow(/does not verify/);
  });

  it("issues opaque tokens whose introspection carries tenant, patient and scope, until revoked", async () => {
    const token = await authz.mintToken({ tenant: "globex", scope: "user/Patient.cruds", patient: "globex-p2", format: "opaque" });
    expect(token.split(".")).toHaveLength(1);
    const res = await introspect(token);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ active: true, tenant: "globex", patient: "globex-p2", scope: "user/Patient.cruds", client_id: "demo-app", iss: authz.issuer, aud: authz.audience });
    await authz.revoke(token);
    expect(await (await introspect(token)).json()).toEqual({ active: false });
  });

  it("refuses introspection with a wrong secret, and non-SMART scopes at the token endpoint", async () => {
    const token = await authz.mintToken({ tenant: "acme", scope: "system/*.read", format: "opaque" });
    expect((await introspect(token, "wrong")).status).toBe(401);
    await expect(authz.mintToken({ tenant: "acme", scope: "admin everything" })).rejects.toThrow(/invalid_scope/);
  });

  it("issues the %2F-encoded scopes Entra ID issues, as asked for, in JWTs and introspection", async () => {
    const scope = "patient%2FObservation.rs launch%2Fpatient user%2f*.read system%2FPatient.s?identifier=x|1";
    expect((await verifyJwt(await authz.mintToken({ tenant: "acme", scope, patient: "acme-p1" }))).payload).toMatchObject({ scope, patient: "acme-p1" });
    const opaque = await authz.mintToken({ tenant: "acme", scope, format: "opaque" });
    expect(await (await introspect(opaque)).json()).toMatchObject({ active: true, scope });
  });

  it.each(["patient%252FObservation.rs", "patient%2F%2FObservation.rs", "patient%3FObservation.rs", "launch%2Fother", "patient%2F"])("still refuses %s, which is no SMART scope", async (scope) => {
    await expect(authz.mintToken({ tenant: "acme", scope })).rejects.toThrow(/invalid_scope/);
  });

  it("counts requests per endpoint", async () => {
    authz.resetCounters();
    await fetch(`${authz.issuer}/.well-known/openid-configuration`);
    await fetch(authz.jwksUri);
    const token = await authz.mintToken({ tenant: "acme", scope: "system/*.read", format: "opaque" });
    await introspect(token);
    expect(authz.counters()).toEqual({ discovery: 1, jwks: 1, token: 1, introspection: 1 });
  });
});
