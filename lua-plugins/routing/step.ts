/**
 * Pipeline steps of routing: which tenant (step 2), what the tenant's routes say (after
 * authorization), and where the request goes upstream (the last step before proxying).
 */
import * as gw from "../core/gateway";
import { OUT_OF_ORDER, refusal, type RequestState, type Verdict } from "../core/request";
import { fhirPath, resolve } from "./tenant";
import { canonicalQuery } from "../http/query";
import { MAX_PARAMS } from "../http/safety";

const ngxVar = ngx.var;

const NO_TENANT = refusal(404, "not-found", "No tenant matches this request.");
const NOT_UNDER_BASE = refusal(404, "not-found", "The path is not under this tenant's FHIR base.");
const ROUTE_DENIED = refusal(403, "forbidden", "This interaction is not allowed on this tenant.");

/** Read only when the policy resolves tenants by header at all. */
const tenantHeader = gw.tenantHeaderVar;

export function resolveTenant(st: RequestState): Verdict {
  const header = tenantHeader === undefined ? undefined : ngxVar[tenantHeader];
  const [tenant, mode] = resolve(gw.index, undefined, st.host, st.path, header);
  if (tenant === undefined || mode === undefined) return NO_TENANT;
  const fpath = fhirPath(tenant, mode, st.path);
  if (fpath === undefined) return NOT_UNDER_BASE;
  st.tenant = tenant;
  st.fhirPath = fpath;
  // The conf picks the tenant's upstream block, scheme and Host from this one variable.
  ngxVar.fe_tenant_id = tenant.id;
  return undefined;
}

/**
 * The route's own verdict, after identity and authorization: an anonymous client learns
 * nothing about which interactions a tenant allows.
 */
export function applyRoute(st: RequestState): Verdict {
  const route = st.route;
  const c = st.c;
  if (route === undefined || c === undefined) return undefined;
  if (route.keep_authorization) ngxVar.fe_authorization = ngxVar.http_authorization ?? "";
  if (route.deny) return ROUTE_DENIED;
  return undefined;
}

/** Path and query upstream: the tenant's base path, the FHIR path, the client's canonical query (plus an injected patient). */
export function setUpstream(st: RequestState): Verdict {
  const tenant = st.tenant;
  if (tenant === undefined) return OUT_OF_ORDER;
  let target = tenant.upstream.base_path + st.fhirPath;
  if (target === "") target = "/";
  const args = st.args;
  const inject = st.inject;
  if (inject !== undefined) {
    // The injected patient joins the canonical query in its place (a FHIR id reads one way).
    const joined = args === undefined || args === "" ? inject : args + "&" + inject;
    const [canon] = canonicalQuery(joined, MAX_PARAMS + 1);
    target = target + "?" + (canon ?? joined);
  } else if (args !== undefined && args !== "") {
    // An empty canonical query (`?`, `?&&`) is no query: one URI upstream, and one cache entry.
    target = target + "?" + args;
  }
  st.upstream = target;
  ngxVar.fe_upstream_uri = target;
  return undefined;
}
