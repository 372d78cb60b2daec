/**
 * Identity against the real oidc-provider of the test stack: token kinds, rejected forms,
 * tenant agreement, identity headers upstream, and the public endpoints. Nothing the gateway
 * refuses may reach the upstream, which the recording upstream proves.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { beforeEach, describe, expect, it } from "vitest";
import { algConfusion, algNone, forge, goodClaims, mint, withHeader } from "../../harness/authz-client.ts";
import { TEST_AUDIENCE } from "../../harness/auth-constants.ts";
import { clearUpstream, seededPatients, stack, upstreamRequests } from "../../harness/env.ts";
import { expectOutcome } from "../../harness/fhir.ts";
import { rawRequest } from "../../harness/raw-http.ts";

const BASE = "/secure/fhir";

async function get(path: string, token?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack().gateway}${path}`, { headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) } });
}

/** 401 OperationOutcome with the given RFC 6750 challenge, and the upstream saw nothing. */
async function expect401(res: Response, error: "invalid_request" | "invalid_token" | undefined): Promise<void> {
  expectOutcome(res.status, 401, res.headers.get("content-type"), await res.text());
  const challenge = res.headers.get("www-authenticate") ?? "";
  expect(challenge).toMatch(/^Bearer realm="fhir-edge"/);
  if (error === undefined) expect(challenge).not.toMatch(/error=/);
  else expect(challenge).toContain(`error="${error}"`);
  expect(await upstreamRequests()).toEqual([]);
}

describe("identity: accepted tokens", () => {
  beforeEach(clearUpstream);

  it.each([
    ["JWT RS256", { alg: "RS256" as const }],
    ["JWT ES256", { alg: "ES256" as const }],
    ["opaque (introspection)", { format: "opaque" as const }],
  ])("%s is accepted, and the upstream gets the identity headers and no token", async (_name, kind) => {
    const [patient] = await seededPatients("acme");
    const token = await mint({ scope: "patient/*.rs launch/patient", patient, fhirUser: `Patient/${patient}`, ...kind });
    const res = await get(`${BASE}/Patient?_id=${patient}`, token, { "X-Request-ID": "client-req-12345678" });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe("Bundle");

    const seen = await upstreamRequests();
    expect(seen).toHaveLength(1);
    const h = seen[0]!.headers;
    expect(h["x-tenant-id"]).toBe("secure");
    expect(h["x-client-id"]).toBe("demo-app");
    expect(h["x-fhir-patient"]).toBe(patient);
    expect(h["x-user-id"]).toBe("demo-app");
    expect(h["x-request-id"]).toBe("client-req-12345678");
    expect(h["x-policy-version"]).toBe(stack().version);
    expect(h["authorization"]).toBeUndefined();
  });

  it("forwards the token only on a route that keeps it", async () => {
    const token = await mint({ scope: "system/*.rs" });
    await get(`${BASE}/Basic?code=x`, token);
    await get(`${BASE}/Patient`, token);
    const seen = await upstreamRequests();
    expect(seen.map((r) => [r.url.split("?")[0], r.headers["authorization"]])).toEqual([
      ["/acme/R4/Basic", `Bearer ${token}`],
      ["/acme/R4/Patient", undefined],
    ]);
  });

  it("serves metadata and .well-known/smart-configuration without a token", async () => {
    expect((await get(`${BASE}/metadata`)).status).toBe(200);
    expect((await upstreamRequests()).map((r) => r.url)).toEqual(["/acme/R4/metadata"]);
  });

  it("refuses client identity headers: the gateway's own replace them", async () => {
    const token = await mint({ scope: "system/*.rs" });
    await get(`${BASE}/Patient`, token, { "X-User-ID": "admin", "X-FHIR-Patient": "someone-else", "X-Client-ID": "root", "X-Tenant-ID": "acme" });
    const h = (await upstreamRequests())[0]!.headers;
    expect([h["x-user-id"], h["x-fhir-patient"], h["x-client-id"], h["x-tenant-id"]]).toEqual(["demo-app", undefined, "demo-app", "secure"]);
  });
});

/** Status of a direct POST to the mTLS front, with or without the gateway's client certificate. */
function frontStatus(withCert: boolean): Promise<number | string> {
  const m = stack().authz.mtls;
  return new Promise((resolve) => {
    const req = httpsRequest(
      `${m.url}/token/introspection`,
      { method: "POST", ca: readFileSync(m.ca), ...(withCert ? { cert: readFileSync(m.clientCert), key: readFileSync(m.clientKey) } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    req.end("token=x");
  });
}

describe("identity: introspection over mTLS", () => {
  beforeEach(clearUpstream);

  it("presents the policy's client certificate to an endpoint that demands one", async () => {
    // The front refuses a TLS client without a certificate from its CA...
    expect(await frontStatus(false)).not.toBe(400);
    expect(typeof (await frontStatus(false))).toBe("string");
    expect(await frontStatus(true)).toBe(400);
    // ...and the gateway's introspection through it works, so the gateway presented one.
    const token = await mint({ tenant: "mtls", scope: "system/*.rs", format: "opaque" });
    const res = await get("/mtls/fhir/Patient", token);
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await upstreamRequests())[0]?.headers["x-tenant-id"]).toBe("mtls");
  });
});

describe("identity: tenant agreement", () => {
  beforeEach(clearUpstream);

  it("is 403 when the token's tenant claim names another tenant, never a silent switch", async () => {
    for (const format of ["jwt", "opaque"] as const) {
      const token = await mint({ tenant: "acme", scope: "system/*.rs", format });
      const res = await get(`${BASE}/Patient`, token);
      expectOutcome(res.status, 403, res.headers.get("content-type"), await res.text());
    }
    expect(await upstreamRequests()).toEqual([]);
  });

  it("refuses a token of an issuer the tenant does not accept, even one cached for another tenant", async () => {
    // demo-jwt (tenant jwt) allows ES256 only; the same RS256 token is good on secure.
    const token = await mint({ tenant: "jwt", scope: "system/*.rs", alg: "RS256" });
    await expect401(await get("/jwt/fhir/Patient", token), "invalid_token");
    const ok = await mint({ tenant: "jwt", scope: "system/*.rs", alg: "ES256" });
    expect((await get("/jwt/fhir/Patient", ok)).status).toBe(200);
    // Opaque tokens are not for a jwt-only issuer: refused without an introspection call.
    await clearUpstream();
    await expect401(await get("/jwt/fhir/Patient", await mint({ tenant: "jwt", scope: "system/*.rs", format: "opaque" })), "invalid_token");
  });

  it("keeps a token good on its own tenant after another tenant refused it", async () => {
    const token = await mint({ tenant: "secure", scope: "system/*.rs", alg: "RS256" });
    await get("/jwt/fhir/Patient", token);
    expect((await get(`${BASE}/Patient`, token)).status).toBe(200);
  });
});

describe("identity: rejected forms get 401 and never reach the upstream", () => {
  beforeEach(clearUpstream);

  it("no token: 401 with a bare challenge", async () => {
    await expect401(await get(`${BASE}/Patient`), undefined);
  });

  it("expired", async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect401(await get(`${BASE}/Patient`, await forge(goodClaims({ exp: now - 30, iat: now - 600 }))), "invalid_token");
  });

  it("not yet valid (nbf), and issued in the future (iat)", async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect401(await get(`${BASE}/Patient`, await forge(goodClaims({ nbf: now + 120 }))), "invalid_token");
    await expect401(await get(`${BASE}/Patient`, await forge(goodClaims({ iat: now + 120 }))), "invalid_token");
  });

  it("wrong iss", async () => {
    await expect401(await get(`${BASE}/Patient`, await forge(goodClaims({ iss: "https://evil.example.org" }))), "invalid_token");
  });

  it("wrong aud (a real token minted for another resource)", async () => {
    await expect401(await get(`${BASE}/Patient`, await mint({ scope: "system/*.rs", audience: "https://other.example.org/fhir" })), "invalid_token");
    await expect401(await get(`${BASE}/Patient`, await mint({ scope: "system/*.rs", audience: "https://other.example.org/fhir", format: "opaque" })), "invalid_token");
  });

  it("alg none", async () => {
    const kid = (JSON.parse(Buffer.from((await mint({ scope: "system/*.rs" })).split(".")[0]!, "base64url").toString()) as { kid: string }).kid;
    await expect401(await get(`${BASE}/Patient`, algNone(goodClaims(), kid)), "invalid_token");
    await expect401(await get(`${BASE}/Patient`, algNone(goodClaims(), kid) + "AAAA"), "invalid_token");
  });

  it("alg confusion: HS256 keyed with the issuer's public key", async () => {
    await expect401(await get(`${BASE}/Patient`, await algConfusion(goodClaims())), "invalid_token");
  });

  it("a bad signature, and a token whose claims were edited after signing", async () => {
    const token = await mint({ scope: "system/*.rs" });
    const [h, p, s] = token.split(".") as [string, string, string];
    const flipped = s.slice(0, 10) + (s[10] === "A" ? "B" : "A") + s.slice(11);
    await expect401(await get(`${BASE}/Patient`, `${h}.${p}.${flipped}`), "invalid_token");
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const edited = Buffer.from(JSON.stringify({ ...claims, scope: "system/*.cruds" })).toString("base64url");
    await expect401(await get(`${BASE}/Patient`, `${h}.${edited}.${s}`), "invalid_token");
  });

  it("a truncated token, and malformed base64 or JSON", async () => {
    const token = await mint({ scope: "system/*.rs" });
    await expect401(await get(`${BASE}/Patient`, token.slice(0, token.length - 20)), "invalid_token");
    await expect401(await get(`${BASE}/Patient`, token.slice(0, token.lastIndexOf(".") + 1)), "invalid_token");
    await expect401(await get(`${BASE}/Patient`, "e30.bm90IGpzb24.c2ln"), "invalid_token");
    await expect401(await get(`${BASE}/Patient`, withHeader({ alg: "RS256" }, goodClaims())), "invalid_token");
  });

  it("a token of 20 KB", async () => {
    await expect401(await get(`${BASE}/Patient`, "a".repeat(20 * 1024)), "invalid_request");
  });

  it("two Authorization headers", async () => {
    const token = await mint({ scope: "system/*.rs" });
    const res = await rawRequest(
      stack().gatewayPort,
      `GET ${BASE}/Patient HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expectOutcome(res.status, 401, res.headers["content-type"], res.body);
    expect(res.headers["www-authenticate"]).toContain('error="invalid_request"');
    expect(await upstreamRequests()).toEqual([]);
  });

  it("not a bearer token at all", async () => {
    await expect401(await get(`${BASE}/Patient`, undefined, { authorization: "Basic ZGVtbzpkZW1v" }), "invalid_request");
    await expect401(await get(`${BASE}/Patient`, undefined, { authorization: "Bearer" }), "invalid_request");
    await expect401(await get(`${BASE}/Patient`, undefined, { authorization: "Bearer a b" }), "invalid_request");
  });

  it("says the same thing for every invalid token, so no answer tells which check failed", async () => {
    const now = Math.floor(Date.now() / 1000);
    const bodies = new Set<string>();
    for (const t of [await forge(goodClaims({ exp: now - 30 })), await forge(goodClaims({ iss: "https://evil.example.org" })), await algConfusion(goodClaims())]) {
      const res = await get(`${BASE}/Patient`, t);
      const oo = JSON.parse(await res.text()) as { issue: { diagnostics: string }[] };
      bodies.add(`${res.status} ${res.headers.get("www-authenticate") ?? ""} ${oo.issue[0]!.diagnostics}`);
    }
    expect([...bodies]).toHaveLength(1);
  });

  it("counts the precise reasons in the metrics", async () => {
    const now = Math.floor(Date.now() / 1000);
    await get(`${BASE}/Patient`, await forge(goodClaims({ exp: now - 30, jti: randomBytes(4).toString("hex") })));
    const metrics = await (await fetch(`${stack().admin}/metrics`)).text();
    expect(metrics).toMatch(/fe_auth_validations_total\{tenant="secure",path="jwt",outcome="expired"\} [1-9]/);
    expect(metrics).toMatch(/fe_auth_validations_total\{tenant="secure",path="none",outcome="missing_token"\} [1-9]/);
  });
});

describe("identity: no raw token anywhere", () => {
  it("keeps tokens out of error.log, metrics, the bundle and its manifest", async () => {
    const tokens = [await mint({ scope: "system/*.rs" }), await mint({ scope: "system/*.rs", format: "opaque" })];
    for (const t of tokens) {
      await get(`${BASE}/Patient`, t);
      await get(`${BASE}/Patient`, t.slice(0, -5));
    }
    const log = readFileSync(stack().errorLog, "utf8");
    const metrics = await (await fetch(`${stack().admin}/metrics`)).text();
    const bundle = readFileSync(`${stack().stateDir}/bundles/${stack().version}/manifest.json`, "utf8") + readFileSync(`${stack().stateDir}/bundles/${stack().version}/lua/generated/policy.lua`, "utf8");
    for (const t of tokens) {
      for (const piece of [t, t.slice(-40), t.slice(0, -5)]) {
        expect(log).not.toContain(piece);
        expect(metrics).not.toContain(piece);
      }
    }
    // The introspection client secret never lands in the bundle either.
    expect(bundle).not.toContain(stack().authz.client.secret);
    expect(bundle).toContain("FHIR_EDGE_TEST_INTROSPECTION_SECRET");
    expect(TEST_AUDIENCE).not.toBe("");
  });
});
