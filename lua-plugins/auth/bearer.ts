/**
 * The Authorization header (RFC 6750 §2.1). Pure, for LuaJIT unit tests.
 *
 * Accepted: `Bearer <b64token>`, the scheme in any case, one or more spaces. Anything else,
 * including a token over MAX_TOKEN_LENGTH, is `invalid_request`: the client sent something
 * that is not a bearer token at all, as opposed to a token that fails validation.
 */
import { MAX_TOKEN_LENGTH } from "./jwt";

const match = string.match;
const lower = string.lower;
const sub = string.sub;

export type BearerError = "not_bearer" | "bad_token_chars" | "too_long";

export function bearerToken(header: string): LuaMultiReturn<[string, undefined] | [undefined, BearerError]> {
  if (header.length > MAX_TOKEN_LENGTH + 64) return $multi(undefined, "too_long");
  if (lower(sub(header, 1, 7)) !== "bearer ") return $multi(undefined, "not_bearer");
  const [token] = match(header, "^[Bb][Ee][Aa][Rr][Ee][Rr] +([%w%-%._~%+/]+=*)$");
  if (token === undefined) return $multi(undefined, "bad_token_chars");
  if (token.length > MAX_TOKEN_LENGTH) return $multi(undefined, "too_long");
  return $multi(token, undefined);
}

/**
 * True when the token has exactly two dots, the shape of a JWS compact serialisation. Such a
 * token is judged as a JWT (so `h.p.` with an empty signature is a malformed JWT, never sent
 * to introspection); anything else is opaque, including 5-part JWEs.
 */
export function looksLikeJwt(token: string): boolean {
  const [m] = match(token, "^[^%.]*%.[^%.]*%.[^%.]*$");
  return m !== undefined;
}
