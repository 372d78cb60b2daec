/**
 * JWKS handling for JWT validation: parsing a key set, and the guard that decides whether an
 * unknown `kid` may cause a JWKS download. Pure over the dict it is given (a lua_shared_dict in
 * nginx, a table double in tests), so it runs under plain LuaJIT.
 *
 * The guard is what keeps an attacker's random kids from becoming a download storm: per
 * issuer, at most one refetch per interval across all workers (shared-dict `add` is atomic,
 * so exactly one caller wins it), and a kid still unknown after a refetch is cached as such.
 * Negative entries live in their own dict, so a flood of random kids can only evict other
 * negative entries, never keys or tokens.
 */
import * as cjson from "cjson.safe";
import { publicKeyFromJwk, type Jwk, type PublicKey } from "./crypto";

/** Most keys read from one JWKS; the rest are ignored (and counted). */
export const MAX_KEYS = 32;
/** Longest JWKS document accepted. */
export const MAX_JWKS_BYTES = 65536;

export interface KeySet {
  readonly keys: LuaTable<string, PublicKey>;
  readonly count: number;
  /** Keys skipped: unsupported type or curve, not for signatures, malformed, or over MAX_KEYS. */
  readonly skipped: number;
}

export type JwksError = "bad_jwks" | "too_large";

/** Parses a JWKS document; keys without a kid, or with `use` other than "sig", are skipped. */
export function parseJwks(text: string): LuaMultiReturn<[KeySet, undefined] | [undefined, JwksError]> {
  if (text.length > MAX_JWKS_BYTES) return $multi(undefined, "too_large");
  const [doc] = cjson.decode(text);
  if (type(doc) !== "table") return $multi(undefined, "bad_jwks");
  const list = (doc as { keys?: unknown }).keys;
  if (type(list) !== "table") return $multi(undefined, "bad_jwks");
  const keys = new LuaTable<string, PublicKey>();
  let count = 0;
  let skipped = 0;
  for (const raw of list as unknown[]) {
    const jwk = raw as Jwk & { kid?: unknown; use?: unknown };
    if (count >= MAX_KEYS || type(raw) !== "table" || typeof jwk.kid !== "string" || (jwk.use !== undefined && jwk.use !== "sig")) {
      skipped = skipped + 1;
      continue;
    }
    const [key] = publicKeyFromJwk(jwk);
    if (key === undefined) {
      skipped = skipped + 1;
      continue;
    }
    keys.set(jwk.kid, key);
    count = count + 1;
  }
  return $multi({ keys, count, skipped }, undefined);
}

/** The part of a lua_shared_dict the guard uses. Methods keep self, as on the real dict. */
export interface GuardDict {
  get(this: GuardDict, key: string): LuaMultiReturn<[string | number | boolean | undefined, number | undefined]>;
  add(this: GuardDict, key: string, value: string | number | boolean, exptime?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  set(this: GuardDict, key: string, value: string | number | boolean, exptime?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
}

export interface GuardConfig {
  /** Seconds between two JWKS downloads for one issuer, whatever the kids asked for. */
  readonly refetchInterval: number;
  /** Seconds a kid stays known-unknown after a refetch did not bring it. */
  readonly negativeTtl: number;
}

/** fetch: this caller downloads the JWKS now; deny: refuse the token as unknown_kid. */
export type GuardDecision = "fetch" | "deny";

/**
 * An unknown kid arrived for `issuer`. `locks` holds the per-issuer refetch slots; `negative`
 * the known-unknown kids.
 */
export function onUnknownKid(locks: GuardDict, negative: GuardDict, issuer: string, kid: string, c: GuardConfig): GuardDecision {
  const [known] = negative.get(issuer + "\n" + kid);
  if (known !== undefined) return "deny";
  const [won] = locks.add("jwks\n" + issuer, true, c.refetchInterval);
  return won ? "fetch" : "deny";
}

/** After a refetch: remember the kid as unknown if the new set still lacks it. */
export function afterRefetch(negative: GuardDict, issuer: string, kid: string, set: KeySet | undefined, c: GuardConfig): void {
  if (set !== undefined && set.keys.get(kid) !== undefined) return;
  negative.set(issuer + "\n" + kid, true, c.negativeTtl);
}
