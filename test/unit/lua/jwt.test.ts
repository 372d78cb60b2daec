/**
 * auth/jwt and auth/crypto under LuaJIT (libcrypto through FFI), against tokens from the real
 * demo oidc-provider: RS256, PS256 and ES256 verify; forgeries and bad claims do not.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthz, type Authz } from "../../../demo/authz.ts";
import { runLua } from "../../harness/luajit.ts";

let authz: Authz;
let jwks: { keys: Record<string, unknown>[] };
beforeAll(async () => {
  authz = await startAuthz({ port: 0 });
  jwks = (await (await fetch(authz.jwksUri)).json()) as typeof jwks;
});
afterAll(async () => authz.close());

// Builds the keys from the JWKS in Lua, then verifies; returns the claims or the error code.
const VERIFY = `function(jwks, token, now, opts)
  local crypto = require("auth.crypto")
  local keys = {}
  for _, k in ipairs(jwks.keys) do
    local key = crypto.publicKeyFromJwk(k)
    if key ~= nil then keys[k.kid] = key end
  end
  local claims, err = m.verifyJwt(token, function(kid) return keys[kid] end, {
    issuer = opts.issuer, audiences = opts.audiences, algs = opts.algs, skew = 60, now = now,
  })
  if claims == nil then return err end
  return claims
end`;

const b64 = (v: unknown): string => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const now = (): number => Math.floor(Date.now() / 1000);

async function check(tokens: readonly string[], at = now(), opts: Partial<{ issuer: string; audiences: string[]; algs: string[] }> = {}): Promise<(string | Record<string, unknown>)[]> {
  const o = { issuer: authz.issuer, audiences: [authz.audience], algs: ["RS256", "PS256", "ES256"], ...opts };
  const rs = await runLua("auth.jwt", VERIFY, tokens.map((t) => [jwks, t, at, o]));
  return rs.map((r) => {
    if (!r.ok) throw new Error(r.error);
    return r.values[0] as string | Record<string, unknown>;
  });
}

describe("auth.jwt under LuaJIT", () => {
  it("verifies RS256, PS256 and ES256 access tokens from oidc-provider and returns their claims", async () => {
    const tokens = await Promise.all(
      (["RS256", "PS256", "ES256"] as const).map((alg) => authz.mintToken({ tenant: "acme", scope: "patient/*.rs", patient: "acme-p1", alg })),
    );
    const got = await check(tokens);
    for (const g of got) expect(g).toMatchObject({ tenant: "acme", patient: "acme-p1", scope: "patient/*.rs", iss: authz.issuer, aud: authz.audience });
  });

  it("refuses forgeries: changed claims, alg none, HS256 with the public key as secret, swapped algs", async () => {
    const good = await authz.mintToken({ tenant: "acme", scope: "system/*.read", alg: "RS256" });
    const es = await authz.mintToken({ tenant: "acme", scope: "system/*.read", alg: "ES256" });
    const [h = "", p = "", s = ""] = good.split(".");
    const header = JSON.parse(Buffer.from(h, "base64url").toString()) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const rsaJwk = jwks.keys.find((k) => k["kid"] === header["kid"]);
    const hsInput = `${b64({ ...header, alg: "HS256" })}.${p}`;
    const hs = `${hsInput}.${createHmac("sha256", JSON.stringify(rsaJwk)).update(hsInput).digest("base64url")}`;
    const [eh = "", ep = "", esig = ""] = es.split(".");
    const cases: [string, string][] = [
      [`${h}.${b64({ ...payload, tenant: "globex" })}.${s}`, "bad_signature"],
      [`${b64({ ...header, alg: "none" })}.${p}.`, "alg_not_allowed"],
      [`${b64({ ...header, alg: "none" })}.${p}.${s}`, "alg_not_allowed"],
      [hs, "alg_not_allowed"],
      // An RS256 signature presented as PS256 with the same key, and an EC token relabelled RS256.
      [`${b64({ ...header, alg: "PS256" })}.${p}.${s}`, "bad_signature"],
      [`${b64({ ...JSON.parse(Buffer.from(eh, "base64url").toString()), alg: "RS256" })}.${ep}.${esig}`, "bad_signature"],
      [`${b64({ ...header, kid: "attacker-kid" })}.${p}.${s}`, "unknown_kid"],
      [`${h}.${p}`, "malformed"],
      [`${h}.${p}.${s}.x`, "malformed"],
      [`${h}.!!!.${s}`, "malformed"],
      [`${h}.${b64("not json")}.${s}`, "malformed"],
      [`${b64("[1,2]")}.${p}.${s}`, "malformed"],
      [`${b64({ alg: "RS256" })}.${p}.${s}`, "bad_header"],
      [`${"a".repeat(9000)}.${p}.${s}`, "malformed"],
    ];
    const got = await check(cases.map(([t]) => t));
    cases.forEach(([, want], i) => expect(got[i], `case ${i}`).toBe(want));
  });

  it("checks exp, iat, aud, iss and the alg allow-list, with 60 s of skew", async () => {
    const t = await authz.mintToken({ tenant: "acme", scope: "system/*.read", alg: "ES256", expiresIn: 300 });
    const claims = JSON.parse(Buffer.from(t.split(".")[1] ?? "", "base64url").toString()) as { exp: number; iat: number };
    expect(await check([t], claims.exp + 59)).toEqual([expect.objectContaining({ tenant: "acme" })]);
    expect(await check([t], claims.exp + 60)).toEqual(["expired"]);
    expect(await check([t], claims.iat - 61)).toEqual(["issued_in_future"]);
    expect(await check([t], now(), { audiences: ["https://other.example/fhir"] })).toEqual(["bad_audience"]);
    expect(await check([t], now(), { issuer: "https://evil.example" })).toEqual(["bad_issuer"]);
    expect(await check([t], now(), { algs: ["RS256"] })).toEqual(["alg_not_allowed"]);
  });

  it("hashes with SHA-256 through libcrypto (token cache keys)", async () => {
    const rs = await runLua("auth.crypto", `function(s) return (m.sha256(s):gsub(".", function(c) return string.format("%02x", c:byte()) end)) end`, [["abc"], [""]]);
    expect(rs.map((r) => (r.ok ? r.values[0] : r.error))).toEqual([
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ]);
  });
});
