/**
 * The pure auth modules under plain LuaJIT: the Authorization header, introspection response
 * checks, the token cache entry rules, and the JWKS guard against unknown-kid storms.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { luaFirst, runLua } from "../../harness/luajit.ts";

describe("auth.bearer", () => {
  const cases: [string, string | null, string | null][] = [
    ["Bearer abc.def-ghi_jkl~m+n/o==", "abc.def-ghi_jkl~m+n/o==", null],
    ["bearer abc", "abc", null],
    ["BEARER   abc", "abc", null],
    ["Bearer", null, "not_bearer"],
    ["Bearer ", null, "bad_token_chars"],
    ["Basic YWJj", null, "not_bearer"],
    ["Bearer a b", null, "bad_token_chars"],
    ["Bearer abc,", null, "bad_token_chars"],
    ["Bearer a=b", null, "bad_token_chars"],
    ["Bearer abc\u0000", null, "bad_token_chars"],
    [`Bearer ${"a".repeat(8192)}`, "a".repeat(8192), null],
    [`Bearer ${"a".repeat(8193)}`, null, "too_long"],
    [`Bearer ${"a".repeat(20 * 1024)}`, null, "too_long"],
  ];
  it("takes the token out of `Bearer <b64token>` and names what is wrong with anything else", async () => {
    const got = await runLua("auth.bearer", "bearerToken", cases.map(([h]) => [h]));
    cases.forEach(([header, token, error], i) => {
      expect(got[i], header.slice(0, 40)).toEqual({ ok: true, values: token === null ? [undefined, error] : [token, undefined] });
    });
  });

  it("judges a token with exactly two dots as a JWT, anything else as opaque", async () => {
    const tokens = ["a.b.c", "a.b.", "..", "abc", "a.b", "a.b.c.d.e", "a.b.c."];
    expect(await luaFirst<boolean>("auth.bearer", "looksLikeJwt", tokens.map((t) => [t]))).toEqual([true, true, true, false, false, false, false]);
  });
});

describe("auth.introspect", () => {
  const expectation = { issuer: "https://idp", audiences: ["fhir"], skew: 5, now: 1000, tenantClaim: "tenant", patientClaim: "patient" };
  const check = async (body: string): Promise<unknown[]> => {
    const [r] = await runLua("auth.introspect", "checkResponse", [[body, expectation]]);
    if (r === undefined || !r.ok) throw new Error(JSON.stringify(r));
    return r.values;
  };
  const good = { active: true, iss: "https://idp", aud: ["x", "fhir"], exp: 2000, client_id: "app", scope: "patient/*.rs", sub: "u1", tenant: "acme", patient: "p1", fhirUser: "Practitioner/1" };

  it("accepts an active token and reads the SMART fields", async () => {
    expect(await check(JSON.stringify(good))).toEqual([{ sub: "u1", client_id: "app", scope: "patient/*.rs", exp: 2000, tenant: "acme", patient: "p1", fhir_user: "Practitioner/1" }, undefined]);
  });

  it.each([
    ["inactive", { active: false }, "inactive"],
    ["active not a boolean", { ...good, active: "true" }, "bad_response"],
    ["not JSON", "nope", "bad_response"],
    ["an array", [good], "bad_response"],
    ["another iss", { ...good, iss: "https://evil" }, "bad_issuer"],
    ["no aud", { ...good, aud: undefined }, "bad_audience"],
    ["another aud", { ...good, aud: "other" }, "bad_audience"],
    ["expired beyond the skew", { ...good, exp: 994 }, "expired"],
    ["nbf ahead beyond the skew", { ...good, nbf: 1006 }, "not_yet_valid"],
    ["scope not a string", { ...good, scope: ["a"] }, "bad_scope"],
  ])("refuses %s", async (_name, body, reason) => {
    expect(await check(typeof body === "string" ? body : JSON.stringify(body))).toEqual([undefined, reason]);
  });

  it("accepts exp and nbf within the skew", async () => {
    expect((await check(JSON.stringify({ ...good, exp: 996, nbf: 1004 })))[0]).toMatchObject({ exp: 996 });
  });

  it("form-encodes the token and the client credentials", async () => {
    expect(await luaFirst<string>("auth.introspect", "requestBody", [["a+b/c=="]])).toEqual(["token=a%2Bb%2Fc%3D%3D&token_type_hint=access_token"]);
    expect(await luaFirst<string>("auth.introspect", "basicCredentials", [["gw:1", "s e/cret"]])).toEqual(["gw%3A1:s%20e%2Fcret"]);
  });
});

describe("auth.cache", () => {
  const id = { issuer: "demo", tenant: "acme", scope: "patient/*.rs", exp: 1100, at: 1000, via: "introspection", tid: "0123456789abcdef" };

  it("serves an entry only while it is younger than the class TTL and the token is unexpired", async () => {
    const f = await luaFirst<boolean>("auth.cache", "fresh", [
      [id, 1001, 5],
      [id, 1005, 5],
      [id, 1006, 5],
      [id, 1059, 60],
      [id, 1100, 600],
    ]);
    expect(f).toEqual([true, true, false, true, false]);
  });

  it("keeps an entry for min(long TTL, exp - now), and not at all once expired", async () => {
    expect(await luaFirst<number>("auth.cache", "entryTtl", [[id, 1000, 60], [id, 1080, 60], [id, 1100, 60]])).toEqual([60, 20, 0]);
  });

  it("round-trips an entry and treats anything malformed as a miss", async () => {
    const [back] = await luaFirst<unknown>("auth.cache", "function(e) local cjson = require('cjson.safe') return m.decodeEntry(cjson.encode(e)) end", [[id]]);
    expect(back).toEqual({ ...id });
    const bad = ['{"issuer":"x"}', "[]", "nope", JSON.stringify({ ...id, via: "magic" }), JSON.stringify({ ...id, exp: "soon" })];
    expect(await luaFirst<unknown>("auth.cache", "decodeEntry", bad.map((b) => [b]))).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it("names a token by the hex of its hash's first bytes", async () => {
    expect(await luaFirst<string>("auth.cache", "hexPrefix", [["\u0001\u0010AZabc", 4]])).toEqual(["0110415a"]);
  });
});

// A shared dict whose entries expire on a clock the test moves (T), as lua_shared_dict's do.
const GUARD = `function(steps, interval, negativeTtl)
  local function dict()
    local store, d = {}, {}
    local function live(k) local e = store[k] if e and (e.exp == 0 or e.exp > T) then return e end end
    function d:get(k) local e = live(k) if e then return e.v end end
    function d:set(k, v, ttl) store[k] = { v = v, exp = (ttl and ttl > 0) and (T + ttl) or 0 } return true end
    function d:add(k, v, ttl) if live(k) then return false, "exists" end return d:set(k, v, ttl) end
    return d
  end
  local locks, neg = dict(), dict()
  local cfg = { refetchInterval = interval, negativeTtl = negativeTtl }
  local out = {}
  for _, s in ipairs(steps) do
    T = s[1]
    local decision = m.onUnknownKid(locks, neg, "demo", s[2], cfg)
    out[#out + 1] = decision
    if decision == "fetch" then
      local set = { keys = {} }
      if s[3] then set.keys[s[2]] = true end
      m.afterRefetch(neg, "demo", s[2], set, cfg)
    end
  end
  return out
end`;

describe("auth.jwks guard", () => {
  it("allows one refetch per interval per issuer, whatever the kids, and remembers kids still unknown", async () => {
    // [time, kid, does the refetched JWKS have it]
    const steps = [
      [0, "k1", false],
      [0.1, "k2", false],
      [1, "k3", false],
      [2.9, "k4", false],
      [3.1, "k1", false], // k1 is known-unknown (negative TTL 5 s): no fetch even with the slot free
      [3.2, "k5", true], // a new kid past the interval: fetch
      [3.3, "k6", false],
      [5.5, "k1", false], // k1's negative entry is gone and the slot is free again
    ];
    const [decisions] = await luaFirst<string[]>("auth.jwks", GUARD, [[steps, 3, 5]]);
    expect(decisions).toEqual(["fetch", "deny", "deny", "deny", "deny", "fetch", "deny", "deny"]);
    const [later] = await luaFirst<string[]>("auth.jwks", GUARD, [[[...steps, [6.4, "k1", false]], 3, 5]]);
    expect(later?.at(-1)).toBe("fetch");
  });

  it("parses at most 32 keys of a JWKS, skips keys not for signing, and refuses huge documents", async () => {
    const rsa = (i: number) => ({ ...generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "jwk" }), kid: `r${i}` });
    const one = rsa(0);
    const keys = [
      ...Array.from({ length: 40 }, (_, i) => ({ ...one, kid: `r${i}` })),
      { ...one, kid: "enc", use: "enc" },
      { kty: "oct", kid: "hmac", k: "c2VjcmV0" },
    ];
    const summary = "function(text) local set, err = m.parseJwks(text) if not set then return err end return { count = set.count, skipped = set.skipped, has0 = set.keys.r0 ~= nil, has40 = set.keys.r39 ~= nil } end";
    const [parsed] = await luaFirst<{ count: number; skipped: number; has0: boolean; has40: boolean }>("auth.jwks", summary, [[JSON.stringify({ keys })]]);
    expect(parsed).toEqual({ count: 32, skipped: 10, has0: true, has40: false });
    const [onlyBad] = await luaFirst<unknown>("auth.jwks", summary, [[JSON.stringify({ keys: [{ ...one, kid: "enc", use: "enc" }, { kty: "oct", kid: "h", k: "c2VjcmV0" }] })]]);
    expect(onlyBad).toEqual({ count: 0, skipped: 2, has0: false, has40: false });
    const [huge] = await luaFirst<unknown>("auth.jwks", summary, [[JSON.stringify({ keys: [], pad: "x".repeat(70_000) })]]);
    expect(huge).toBe("too_large");
    const [notJwks] = await luaFirst<unknown>("auth.jwks", summary, [['{"keys": "nope"}']]);
    expect(notJwks).toBe("bad_jwks");
  });
});
