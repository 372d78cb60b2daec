/**
 * JWKS per issuer, shared by all workers: the document and its fetch time live in the fe_auth
 * dict, and each worker keeps the parsed key set until the fetch time changes. So a download
 * by any worker (a kid rotation, a max-age refresh) reaches every worker, without a restart.
 *
 * Downloads happen on the request path, single-flight: the first one behind a lock that the
 * others wait on; later ones behind jwks.onUnknownKid's per-issuer slot, which also bounds
 * them to one per refetch interval (every download takes that slot, so an attacker's random
 * kids right after one cannot cause another).
 */
import type { IssuerIR } from "../generated/policy";
import { countJwks } from "../metrics/metrics";
import { jwksEndpoint, get } from "./idp";
import { parseJwks, type KeySet } from "./jwks";

interface Parsed {
  readonly stamp: number;
  readonly set: KeySet;
}

const parsed = new LuaTable<string, Parsed>();

function docKey(iss: IssuerIR): string {
  return "k\t" + iss.id;
}
function stampKey(iss: IssuerIR): string {
  return "ks\t" + iss.id;
}
/** The refetch slot jwks.onUnknownKid takes; a download sets it for the interval too. */
export function slotKey(iss: IssuerIR): string {
  return "jwks\n" + iss.id;
}

/** Downloads the JWKS now; true when a usable set was stored. */
export function download(iss: IssuerIR, dict: SharedDict): boolean {
  dict.set(slotKey(iss), true, iss.jwks_refetch_s);
  const ep = jwksEndpoint(iss, dict);
  if (ep === undefined) {
    countJwks(iss.id, false);
    return false;
  }
  const reply = get(ep);
  if (reply.status !== 200) {
    ngx.log(ngx.WARN, "fhir-edge: JWKS of issuer ", iss.id, " answered ", reply.status);
    countJwks(iss.id, false);
    return false;
  }
  const [set, err] = parseJwks(reply.body);
  if (set === undefined || set.count === 0) {
    ngx.log(ngx.WARN, "fhir-edge: JWKS of issuer ", iss.id, " is unusable: ", err ?? "no supported keys");
    countJwks(iss.id, false);
    return false;
  }
  const now = ngx.now();
  dict.set(docKey(iss), reply.body);
  dict.set(stampKey(iss), now);
  parsed.set(iss.id, { stamp: now, set });
  countJwks(iss.id, true);
  return true;
}

function current(iss: IssuerIR, dict: SharedDict, stamp: number): KeySet | undefined {
  const p = parsed.get(iss.id);
  if (p !== undefined && p.stamp === stamp) return p.set;
  const [doc] = dict.get(docKey(iss));
  if (typeof doc !== "string") return undefined;
  const [set] = parseJwks(doc);
  if (set === undefined) return undefined;
  parsed.set(iss.id, { stamp, set });
  return set;
}

/**
 * The issuer's key set, downloading it first if no worker has yet (waiting up to the issuer's
 * timeout for a download already under way). Undefined: the JWKS is unavailable.
 */
export function keySet(iss: IssuerIR, dict: SharedDict): KeySet | undefined {
  const [stamp] = dict.get(stampKey(iss));
  if (typeof stamp === "number") {
    const set = current(iss, dict, stamp);
    // Past max age: refresh, one worker per refetch interval; the rest use the set they have.
    if (ngx.now() - stamp > iss.jwks_max_age_s) {
      const [won] = dict.add(slotKey(iss), true, iss.jwks_refetch_s);
      if (won && download(iss, dict)) return parsed.get(iss.id)?.set ?? set;
    }
    return set;
  }
  const lock = "kl\t" + iss.id;
  const [won] = dict.add(lock, true, iss.timeout_ms / 1000 + 1);
  if (won) {
    const ok = download(iss, dict);
    dict.delete(lock);
    return ok ? parsed.get(iss.id)?.set : undefined;
  }
  const deadline = ngx.now() + iss.timeout_ms / 1000 + 0.5;
  let pause = 0.002;
  while (ngx.now() < deadline) {
    ngx.sleep(pause);
    if (pause < 0.05) pause = pause * 2;
    const [s] = dict.get(stampKey(iss));
    if (typeof s === "number") return current(iss, dict, s);
    const [busy] = dict.get(lock);
    if (busy === undefined) return undefined;
  }
  return undefined;
}
