/**
 * Who is asking: the bearer token of a request, validated against the tenant's issuers and
 * cached. Fail closed: no token, a bad one, or one that cannot be validated right now never
 * reaches the upstream.
 *
 *   cache hit (worker LRU, then the fe_tokens dict), fresh for the request's class TTL
 *   -> else JWT (local, JWKS) or introspection (single-flight per token across workers)
 *   -> a validated identity is cached; a bad token is cached as bad (fe_auth_neg, short)
 *
 * Failures carry a precise reason for metrics; the client only learns invalid_request,
 * invalid_token, or "try again" (503), so no answer tells an attacker which check failed.
 */
import * as lrucache from "resty.lrucache";
import * as cjson from "cjson.safe";
import * as policy from "../generated/policy";
import { nonEmpty } from "../core/str";
import type { IssuerIR, TenantIR } from "../generated/policy";
import { countAuth, observeIntrospection } from "../metrics/metrics";
import { bearerToken, looksLikeJwt } from "./bearer";
import { fresh, hexPrefix, load, loadNegative, store, storeNegative, type Identity } from "./cache";
import { base64urlDecode, sha256, sha256From } from "./crypto";
import { introspectionEndpoint, loadSecrets, post } from "./idp";
import { checkResponse, requestBody } from "./introspect";
import { afterRefetch, onUnknownKid } from "./jwks";
import { verifyJwt, type Claims, type Expectations } from "./jwt";
import { download, keySet } from "./keys";

export type { Identity } from "./cache";

export interface AuthFailure {
  readonly status: 401 | 503;
  /** RFC 6750 error; undefined when no token was sent at all. */
  readonly error: "invalid_request" | "invalid_token" | undefined;
  /** Precise, fixed code: metrics and audit only, never the client. */
  readonly reason: string;
}

type Result = LuaMultiReturn<[Identity, undefined] | [undefined, AuthFailure]>;

const sub = string.sub;
const find = string.find;

const tokens = ngx.shared.fe_tokens!;
const neg = ngx.shared.fe_auth_neg!;
const authDict = ngx.shared.fe_auth!;
const cacheCfg = policy.token_cache;
const tenantClaim = policy.resolution.claim;

const issuersById = new LuaTable<string, IssuerIR>();
for (const iss of policy.issuers) issuersById.set(iss.id, iss);
loadSecrets(policy.issuers);

/** Per tenant: issuer id -> true, for the check that a cached identity fits the tenant. */
const accepts = new LuaTable<string, LuaTable<string, boolean>>();
for (const t of policy.tenants) {
  const s = new LuaTable<string, boolean>();
  for (const id of t.issuers) s.set(id, true);
  accepts.set(t.id, s);
}

const [lru] = lrucache.new<Identity>(4096);

const MISSING: AuthFailure = { status: 401, error: undefined, reason: "missing_token" };

function failure(tenant: TenantIR, via: string, status: 401 | 503, error: AuthFailure["error"], reason: string): Result {
  countAuth(tenant.id, via, reason);
  return $multi(undefined, { status, error, reason });
}

function success(tenant: TenantIR, id: Identity, via: string): Result {
  countAuth(tenant.id, via, "ok");
  return $multi(id, undefined);
}

/**
 * Known-bad entries are per tenant: a token refused by one tenant's issuer settings (say, an
 * alg it does not allow) may be good for another tenant, and must stay good there.
 */
function negKey(tenant: TenantIR, key: string): string {
  return tenant.id + "\t" + key;
}

function rejectToken(tenant: TenantIR, key: string, via: string, reason: string): Result {
  storeNegative(neg, negKey(tenant, key), reason, cacheCfg.negative_s);
  return failure(tenant, via, 401, "invalid_token", reason);
}

function remember(key: string, id: Identity, now: number): void {
  store(tokens, key, id, now, cacheCfg.long_s);
  const left = id.exp - now;
  lru?.set(key, id, left < cacheCfg.long_s ? left : cacheCfg.long_s);
}

/** `scope` as a space-separated string, or `scp` as an array (some issuers use it). */
function scopeOf(c: Claims): string {
  const s = c["scope"];
  if (typeof s === "string") return s;
  const scp = c["scp"];
  if (type(scp) === "table") {
    const parts: string[] = [];
    for (const v of scp as unknown[]) if (typeof v === "string") parts.push(v);
    return table.concat(parts, " ");
  }
  return "";
}

function peekIssuer(token: string): string | undefined {
  const [d1] = find(token, ".", 1, true);
  if (d1 === undefined) return undefined;
  const [d2] = find(token, ".", d1 + 1, true);
  if (d2 === undefined) return undefined;
  const raw = base64urlDecode(sub(token, d1 + 1, d2 - 1));
  if (raw === undefined) return undefined;
  const [claims] = cjson.decode(raw);
  if (type(claims) !== "table") return undefined;
  return nonEmpty((claims as Claims)["iss"]);
}

/**
 * A validation this worker finished while the request waited (a JWKS download yields): the
 * other requests of a new token that arrived together then verify nothing themselves.
 */
function verifiedMeanwhile(tenant: TenantIR, key: string, maxAge: number): Identity | undefined {
  const [id] = lru!.get(key);
  return id !== undefined && accepted(tenant, id) && fresh(id, ngx.now(), maxAge) ? id : undefined;
}

function validateJwt(tenant: TenantIR, iss: IssuerIR, token: string, key: string, now: number, maxAge: number): Result {
  const set = keySet(iss, authDict);
  if (set === undefined) return failure(tenant, "jwt", 503, undefined, "jwks_unavailable");
  const meanwhile = verifiedMeanwhile(tenant, key, maxAge);
  if (meanwhile !== undefined) return success(tenant, meanwhile, "cache");
  const e: Expectations = { issuer: iss.issuer, audiences: iss.audiences, algs: iss.algs, skew: iss.skew_s, now };
  let keys = set.keys;
  let [claims, err, kid] = verifyJwt(token, (k) => keys.get(k), e);
  if (err === "unknown_kid" && kid !== undefined) {
    const cfg = { refetchInterval: iss.jwks_refetch_s, negativeTtl: cacheCfg.negative_s };
    if (onUnknownKid(authDict, neg, iss.id, kid, cfg) === "fetch") {
      const fetched = download(iss, authDict) ? keySet(iss, authDict) : undefined;
      afterRefetch(neg, iss.id, kid, fetched, cfg);
      if (fetched !== undefined) {
        keys = fetched.keys;
        [claims, err, kid] = verifyJwt(token, (k) => keys.get(k), e);
      }
    }
  }
  if (claims === undefined) return rejectToken(tenant, key, "jwt", err ?? "invalid");
  const exp = claims["exp"] as number;
  const id: Identity = {
    issuer: iss.id,
    tenant: nonEmpty(claims[tenantClaim]),
    sub: nonEmpty(claims["sub"]),
    client_id: nonEmpty(claims["client_id"]) ?? nonEmpty(claims["azp"]),
    scope: scopeOf(claims),
    patient: nonEmpty(claims[iss.patient_claim]),
    fhir_user: nonEmpty(claims["fhirUser"]),
    exp,
    at: now,
    via: "jwt",
    tid: hexPrefix(key, 8),
  };
  remember(key, id, now);
  return success(tenant, id, "jwt");
}

/** Another request holds the token's introspection: wait for its result, up to the issuer's timeout. */
function awaitIntrospection(tenant: TenantIR, key: string, lock: string, deadline: number, maxAge: number, stale: Identity | undefined): Result {
  let pause = 0.002;
  while (ngx.now() < deadline) {
    ngx.sleep(pause);
    if (pause < 0.05) pause = pause * 2;
    const id = load(tokens, key);
    if (id !== undefined && fresh(id, ngx.now(), maxAge)) return success(tenant, id, "cache");
    const bad = loadNegative(neg, negKey(tenant, key));
    if (bad !== undefined) return failure(tenant, "cache", 401, "invalid_token", bad);
    const [busy] = authDict.get(lock);
    if (busy === undefined) break;
  }
  return unavailable(tenant, stale, "introspection_unavailable");
}

/** One introspection call for this token across all workers; the others wait for its result. */
function introspect(tenant: TenantIR, iss: IssuerIR, token: string, key: string, now: number, maxAge: number, stale: Identity | undefined): Result {
  const lock = "sf\t" + key;
  const timeout = iss.timeout_ms / 1000;
  const [won] = authDict.add(lock, true, timeout + 1);
  if (!won) return awaitIntrospection(tenant, key, lock, now + timeout + 0.5, maxAge, stale);

  const ep = introspectionEndpoint(iss, authDict);
  if (ep === undefined) {
    authDict.delete(lock);
    return unavailable(tenant, stale, "discovery_failed");
  }
  const reply = post(ep, iss.id, requestBody(token));
  observeIntrospection(iss.id, reply.seconds);
  if (reply.status !== 200) {
    authDict.delete(lock);
    if (reply.status === 401 || reply.status === 403) {
      ngx.log(ngx.ERR, "fhir-edge: introspection endpoint of issuer ", iss.id, " refused the gateway's client credentials (", reply.status, ")");
    }
    return unavailable(tenant, stale, "introspection_unavailable");
  }
  const t = ngx.now();
  const [r, err] = checkResponse(reply.body, {
    issuer: iss.issuer,
    audiences: iss.audiences,
    skew: iss.skew_s,
    now: t,
    tenantClaim,
    patientClaim: iss.patient_claim,
  });
  if (r === undefined) {
    if (err === "bad_response") {
      authDict.delete(lock);
      return unavailable(tenant, stale, "introspection_bad_response");
    }
    const res = rejectToken(tenant, key, "introspection", err ?? "invalid");
    authDict.delete(lock);
    return res;
  }
  const id: Identity = {
    issuer: iss.id,
    tenant: r.tenant,
    // No sub: a token with no resource owner (client credentials), whose subject is the client,
    // as RFC 9068 §2.2 has it for JWTs; the same for both validation paths.
    sub: r.sub ?? r.client_id,
    client_id: r.client_id,
    scope: r.scope,
    patient: r.patient,
    fhir_user: r.fhir_user,
    // Without exp, the policy's long TTL bounds the entry.
    exp: r.exp ?? t + cacheCfg.long_s,
    at: t,
    via: "introspection",
    tid: hexPrefix(key, 8),
  };
  remember(key, id, t);
  authDict.delete(lock);
  return success(tenant, id, "introspection");
}

/**
 * The issuer could not answer. A token validated before keeps working until its cache entry
 * ends (stale-if-error: revocations cannot be learnt during an outage anyway); others get 503.
 */
function unavailable(tenant: TenantIR, stale: Identity | undefined, reason: string): Result {
  if (stale !== undefined && ngx.now() < stale.exp) return success(tenant, stale, "cache_stale");
  return failure(tenant, "introspection", 503, undefined, reason);
}

function accepted(tenant: TenantIR, id: Identity): boolean {
  return accepts.get(tenant.id)?.get(id.issuer) === true;
}

/** The issuer settings of the tenant that should validate this token. */
function pickIssuer(tenant: TenantIR, token: string): LuaMultiReturn<[IssuerIR, undefined] | [undefined, string]> {
  if (looksLikeJwt(token)) {
    const iss = peekIssuer(token);
    if (iss === undefined) return $multi(undefined, "malformed");
    for (const id of tenant.issuers) {
      const s = issuersById.get(id);
      if (s !== undefined && s.issuer === iss) return $multi(s, undefined);
    }
    return $multi(undefined, "unknown_issuer");
  }
  for (const id of tenant.issuers) {
    const s = issuersById.get(id);
    if (s !== undefined && s.mode !== "jwt") return $multi(s, undefined);
  }
  return $multi(undefined, "opaque_not_accepted");
}

/**
 * Authenticates the request for `tenant`. `maxAge` is the request's class TTL: a cached
 * validation older than that is done again.
 */
export function authenticate(header: string | undefined, tenant: TenantIR, maxAge: number): Result {
  if (header === undefined) {
    countAuth(tenant.id, "none", "missing_token");
    return $multi(undefined, MISSING);
  }
  const now = ngx.now();
  // Fast path: `Bearer <token>` exactly. A hit means this very string was validated before, so
  // the full syntax check can wait for a miss.
  let stale: Identity | undefined;
  if (sub(header, 1, 7) === "Bearer ") {
    const key = sha256From(header, 8);
    const [hot] = lru!.get(key);
    const id = hot ?? load(tokens, key);
    // Validated under another tenant's issuer settings (the same iss may have several): a miss.
    if (id !== undefined && accepted(tenant, id)) {
      if (fresh(id, now, maxAge)) {
        if (hot === undefined) {
          const left = id.exp - now;
          lru!.set(key, id, left < cacheCfg.long_s ? left : cacheCfg.long_s);
        }
        return success(tenant, id, "cache");
      }
      stale = id;
    }
  }

  const [token, berr] = bearerToken(header);
  if (token === undefined) return failure(tenant, "none", 401, "invalid_request", berr ?? "malformed_header");
  const key = sha256(token);
  const bad = loadNegative(neg, negKey(tenant, key));
  if (bad !== undefined) return failure(tenant, "cache", 401, "invalid_token", bad);

  const [iss, why] = pickIssuer(tenant, token);
  if (iss === undefined) return rejectToken(tenant, key, "none", why ?? "unknown_issuer");
  if (iss.mode === "jwt" || (iss.mode === "auto" && looksLikeJwt(token))) return validateJwt(tenant, iss, token, key, now, maxAge);
  return introspect(tenant, iss, token, key, now, maxAge, stale);
}
