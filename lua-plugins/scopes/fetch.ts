/**
 * Serves a read whose response must be checked first (scopes/authorize ResponseCheck): the
 * access phase fetches it from the upstream through the internal `/__fe_fetch` location (the
 * same proxying, the parent's variables shared), checks it, and only then sends it. A
 * resource that fails the check is a 403 with no byte of it. So is a 404 or 410 from the
 * upstream: answering those as they are would tell a patient-scoped client which ids exist.
 */
import * as cjson from "cjson.safe";
import * as fhir from "../generated/fhir_r4";
import { refusal, type RequestState, type Verdict } from "../core/request";
import { countScopeDenial } from "../metrics/metrics";
import { inCompartment, satisfiesGranular } from "./response";

/** Largest resource checked in memory; larger reads under such scopes are refused. */
const MAX_BODY = 8 * 1024 * 1024;

/** Response headers not copied from the subrequest: nginx sets its own framing; the cache's status becomes X-Cache. */
const SKIP: Record<string, boolean> = { "connection": true, "keep-alive": true, "transfer-encoding": true, "content-length": true, "x-fe-cache": true };

const FETCH = "/__fe_fetch";
/** Set by the cache location's header filter (phases/cache.checked). */
export const CACHE_STATUS = "X-FE-Cache";

/**
 * The resource at the request's upstream target (through `/__fe_fetch`, the parent's
 * variables shared), and its JSON when it is a 200 object within MAX_BODY.
 */
function fetchTarget(via: string): LuaMultiReturn<[CaptureResponse, Record<string, unknown> | undefined]> {
  const res = ngx.location.capture(via, { method: ngx.HTTP_GET, share_all_vars: true });
  if (res.truncated || res.status !== 200 || res.body.length > MAX_BODY) return $multi(res, undefined);
  const [doc] = cjson.decode(res.body);
  return $multi(res, type(doc) === "table" ? (doc as Record<string, unknown>) : undefined);
}

/**
 * Before an update or delete under patient scopes: is the resource already at the target URI
 * in the patient's compartment? Fetched like a checked read, never sent to the client.
 */
export function existingInCompartment(resourceType: string, patient: string): "in" | "out" | "absent" | "upstream_error" {
  const [res, doc] = fetchTarget(FETCH);
  if (res.truncated || res.status === 0 || res.status >= 500) return "upstream_error";
  if (res.status === 404 || res.status === 410) return "absent";
  if (doc === undefined) return "out";
  return inCompartment(doc, resourceType, patient, fhir.patient_paths) ? "in" : "out";
}

const DENIED = refusal(403, "forbidden", "Not allowed by the token's scopes: the resource is outside what they grant.");
export const UPSTREAM_ERROR = refusal(502, "transient", "The upstream FHIR server could not be reached or answered badly.");

/**
 * The last pipeline step, for reads whose response must be checked: fetches, checks and sends
 * the resource, finishing the request (ngx.exit does not return here). Otherwise it returns
 * the refusal: a failed check (counted for the tenant; with shadow the response is sent
 * anyway) or an upstream error.
 *
 * No callback on purpose: a closure over the access phase's locals makes LuaJIT close
 * upvalues (UCLO, not compiled) at every return of the phase, on every request.
 */
export function serveChecked(st: RequestState): Verdict {
  const check = st.check;
  if (check === undefined) return undefined;
  // Through the cache (cache/step) when the read is cacheable: the entry is the requester's
  // partition's, and it is checked here on every hit as on a miss, so nothing cached is ever
  // sent without passing the check.
  const via = st.via;
  const [res, doc] = fetchTarget(via === undefined ? FETCH : via);
  if (via !== undefined) {
    const status = res.header[CACHE_STATUS];
    ngx.var.fe_cache = typeof status === "string" ? "=" + status : "=MISS";
  }
  if (res.truncated || res.status === 0) return UPSTREAM_ERROR;
  let ok = true;
  if (res.status === 404 || res.status === 410) ok = false;
  else if (res.status === 200) {
    if (doc === undefined) ok = false;
    else if (check.patient !== undefined && !inCompartment(doc, check.type, check.patient, fhir.patient_paths)) ok = false;
    else if (check.granular !== undefined && !satisfiesGranular(doc, check.type, check.granular, fhir.token_paths)) ok = false;
  }
  if (!ok) {
    // A refusal does not say what the cache held: a HIT here would tell a client which ids exist.
    if (via !== undefined) ngx.var.fe_cache = "B";
    countScopeDenial(st.tenant === undefined ? "none" : st.tenant.id, check.type, check.patient !== undefined ? "compartment_read" : "granular_read", st.shadow);
    if (!st.shadow) return DENIED;
  }
  ngx.status = res.status;
  for (const [k, v] of pairs(res.header)) {
    if (SKIP[string.lower(k)] !== true) ngx.header[k] = v;
  }
  ngx.print(res.body);
  return ngx.exit(res.status);
}
