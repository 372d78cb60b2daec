/**
 * The token cache: validated identities in a shared dict under the SHA-256 of the token (the
 * raw token is never a key, a value or a log field), and known-bad tokens in a second dict.
 * Pure over the dicts it is given, so it runs under plain LuaJIT with table doubles.
 *
 * An entry records when the token was validated (`at`). A request accepts it only while it is
 * younger than the request's class TTL (short for writes and searches, long for reads) and
 * the token has not expired, so a revoked token stops working within the class TTL. The dict
 * keeps an entry for min(long TTL, exp - now).
 */
import * as cjson from "cjson.safe";
import { nonEmpty } from "../core/str";

export type ValidationPath = "jwt" | "introspection";

export interface Identity {
  /** Issuer id in the policy. */
  readonly issuer: string;
  readonly tenant: string | undefined;
  readonly sub: string | undefined;
  readonly client_id: string | undefined;
  /** Space-separated, as issued. */
  readonly scope: string;
  readonly patient: string | undefined;
  readonly fhir_user: string | undefined;
  /** Token expiry, seconds since the epoch. */
  readonly exp: number;
  /** When the gateway validated it. */
  readonly at: number;
  readonly via: ValidationPath;
  /** First 16 hex digits of the token's SHA-256: the token's name in logs and audit events. */
  readonly tid: string;
}

/** The dict methods used here; methods keep self, as on a lua_shared_dict. */
export interface CacheDict {
  get(this: CacheDict, key: string): LuaMultiReturn<[string | number | boolean | undefined, number | undefined]>;
  set(this: CacheDict, key: string, value: string | number | boolean, exptime?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
}

/** Decodes a dict value; anything that is not a well-formed entry is a miss. */
export function decodeEntry(raw: string): Identity | undefined {
  const [v] = cjson.decode(raw);
  if (type(v) !== "table") return undefined;
  const e = v as Record<string, unknown>;
  const exp = e["exp"];
  const at = e["at"];
  const issuer = nonEmpty(e["issuer"]);
  const via = e["via"];
  const tid = nonEmpty(e["tid"]);
  if (typeof exp !== "number" || typeof at !== "number" || issuer === undefined || tid === undefined) return undefined;
  if (via !== "jwt" && via !== "introspection") return undefined;
  return {
    issuer,
    tenant: nonEmpty(e["tenant"]),
    sub: nonEmpty(e["sub"]),
    client_id: nonEmpty(e["client_id"]),
    scope: nonEmpty(e["scope"]) ?? "",
    patient: nonEmpty(e["patient"]),
    fhir_user: nonEmpty(e["fhir_user"]),
    exp,
    at,
    via,
    tid,
  };
}

/** True when `id` may serve a request whose class TTL is `maxAge` seconds, at `now`. */
export function fresh(id: Identity, now: number, maxAge: number): boolean {
  return now < id.exp && now - id.at <= maxAge;
}

/** Seconds the dict keeps an entry: min(long TTL, exp - now); 0 means do not cache. */
export function entryTtl(id: Identity, now: number, longTtl: number): number {
  const left = id.exp - now;
  if (left <= 0) return 0;
  return left < longTtl ? left : longTtl;
}

export function store(tokens: CacheDict, key: string, id: Identity, now: number, longTtl: number): boolean {
  const ttl = entryTtl(id, now, longTtl);
  if (ttl <= 0) return false;
  const [raw] = cjson.encode(id);
  if (raw === undefined) return false;
  const [ok] = tokens.set(key, raw, ttl);
  return ok;
}

export function load(tokens: CacheDict, key: string): Identity | undefined {
  const [raw] = tokens.get(key);
  if (typeof raw !== "string") return undefined;
  return decodeEntry(raw);
}

/** Remembers a token as bad (with why, for metrics) for `ttl` seconds. */
export function storeNegative(neg: CacheDict, key: string, reason: string, ttl: number): void {
  neg.set("t" + key, reason, ttl);
}

export function loadNegative(neg: CacheDict, key: string): string | undefined {
  const [v] = neg.get("t" + key);
  return typeof v === "string" ? v : undefined;
}

const byte = string.byte;
const format = string.format;

/** Lower-case hex of the first `n` bytes of `s`. */
export function hexPrefix(s: string, n: number): string {
  const parts: string[] = [];
  for (let i = 1; i <= n && i <= s.length; i++) parts.push(format("%02x", byte(s, i)));
  return table.concat(parts);
}
