/**
 * JWT access-token validation (RFC 7519 / RFC 9068), pure apart from the libcrypto calls in
 * auth/crypto: the caller supplies the key lookup and the clock, so the JWKS cache and its
 * single-flight refetch live elsewhere and this module runs under plain LuaJIT in tests.
 *
 * Refused: alg `none` and anything outside the issuer's allow-list (HS* never verifies: there
 * is no HMAC path at all, so a public key used as a shared secret gets nowhere), a key whose
 * type does not match the alg, malformed base64url or JSON, and iss/aud/exp/nbf/iat outside
 * the expectations (with skew). `exp` is required: an access token that never expires is not
 * accepted.
 */
import * as cjson from "cjson.safe";
import { contains, matches } from "../core/str";
import { base64urlDecode, verify, type Alg, type PublicKey } from "./crypto";

export type JwtError =
  | "malformed"
  | "bad_header"
  | "alg_not_allowed"
  | "unknown_kid"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "issued_in_future"
  | "missing_exp"
  | "bad_issuer"
  | "bad_audience";

/** Claims as decoded; fields are checked before use, never trusted by type alone. */
export type Claims = Record<string, unknown>;

export interface Expectations {
  readonly issuer: string;
  /** Accepted `aud` values; the token's aud (string or array) must contain one. */
  readonly audiences: readonly string[];
  readonly algs: readonly Alg[];
  /** Seconds of clock skew tolerated on exp, nbf and iat. */
  readonly skew: number;
  /** Seconds since the epoch. */
  readonly now: number;
}

/** Longest token accepted; a bound on work and memory per request. */
export const MAX_TOKEN_LENGTH = 8192;

const find = string.find;
const sub = string.sub;

function decodeJson(part: string): Record<string, unknown> | undefined {
  const raw = base64urlDecode(part);
  if (raw === undefined) return undefined;
  const [v] = cjson.decode(raw);
  // cjson decodes a JSON array to a table too; an object must have no [1].
  if (type(v) !== "table" || (v as unknown[])[0] !== undefined) return undefined;
  return v as Record<string, unknown>;
}

function isAllowed(alg: unknown, algs: readonly Alg[]): alg is Alg {
  for (const a of algs) if (a === alg) return true;
  return false;
}

/** True when `aud` (a string or a list, as JWT and RFC 7662 both allow) names one of `audiences`. */
export function audienceOk(aud: unknown, audiences: readonly string[]): boolean {
  if (typeof aud === "string") {
    for (const a of audiences) if (a === aud) return true;
    return false;
  }
  if (type(aud) !== "table") return false;
  for (const v of aud as unknown[]) {
    if (typeof v === "string") for (const a of audiences) if (a === v) return true;
  }
  return false;
}

/** Time and identity checks on decoded claims. */
export function checkClaims(c: Claims, e: Expectations): JwtError | undefined {
  if (c["iss"] !== e.issuer) return "bad_issuer";
  if (!audienceOk(c["aud"], e.audiences)) return "bad_audience";
  const exp = c["exp"];
  if (typeof exp !== "number") return "missing_exp";
  if (e.now >= exp + e.skew) return "expired";
  const nbf = c["nbf"];
  if (nbf !== undefined && (typeof nbf !== "number" || e.now + e.skew < nbf)) return "not_yet_valid";
  const iat = c["iat"];
  if (iat !== undefined && (typeof iat !== "number" || iat > e.now + e.skew)) return "issued_in_future";
  return undefined;
}

export type VerifyResult = LuaMultiReturn<[Claims, undefined, string] | [undefined, JwtError, string | undefined]>;

/**
 * Verifies `token`. The third value is the header's kid, so a caller that got unknown_kid can
 * decide whether a JWKS refetch is allowed.
 */
export function verifyJwt(token: string, keyFor: (this: void, kid: string) => PublicKey | undefined, e: Expectations): VerifyResult {
  if (token.length > MAX_TOKEN_LENGTH || matches(token, "[^%w%-_%.]")) return $multi(undefined, "malformed", undefined);
  const [d1] = find(token, ".", 1, true);
  if (d1 === undefined) return $multi(undefined, "malformed", undefined);
  const [d2] = find(token, ".", d1 + 1, true);
  if (d2 === undefined || contains(sub(token, d2 + 1), ".")) return $multi(undefined, "malformed", undefined);

  const header = decodeJson(sub(token, 1, d1 - 1));
  if (header === undefined) return $multi(undefined, "malformed", undefined);
  const alg = header["alg"];
  const kid = header["kid"];
  if (typeof alg !== "string" || typeof kid !== "string" || kid === "") return $multi(undefined, "bad_header", undefined);
  if (header["crit"] !== undefined) return $multi(undefined, "bad_header", kid);
  if (!isAllowed(alg, e.algs)) return $multi(undefined, "alg_not_allowed", kid);

  const sig = base64urlDecode(sub(token, d2 + 1));
  if (sig === undefined || sig === "") return $multi(undefined, "malformed", kid);
  const claims = decodeJson(sub(token, d1 + 1, d2 - 1));
  if (claims === undefined) return $multi(undefined, "malformed", kid);

  const key = keyFor(kid);
  if (key === undefined) return $multi(undefined, "unknown_kid", kid);
  if (!verify(alg, key, sub(token, 1, d2 - 1), sig)) return $multi(undefined, "bad_signature", kid);

  const bad = checkClaims(claims, e);
  if (bad !== undefined) return $multi(undefined, bad, kid);
  return $multi(claims, undefined, kid);
}
