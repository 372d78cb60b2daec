/**
 * Pipeline step 4, identity: the bearer token, validated and cached (auth/identity), and the
 * identity headers for the upstream. Anonymous tenants and public interactions (metadata,
 * smart-configuration) need none.
 */
import * as gw from "../core/gateway";
import { OUT_OF_ORDER, refusal, type Refusal, type RequestState, type Verdict } from "../core/request";
import { countAuth } from "../metrics/metrics";
import { authenticate, type AuthFailure } from "./identity";

const ngxVar = ngx.var;

const REALM = 'Bearer realm="fhir-edge"';
/** The client learns the kind of failure, never which check failed (that goes to metrics). */
const NO_TOKEN = refusal(401, "login", "An access token is required.", { "WWW-Authenticate": REALM });
const BAD_REQUEST = refusal(401, "login", "The Authorization header is not a single valid bearer token.", { "WWW-Authenticate": REALM + ', error="invalid_request"' });
const BAD_TOKEN = refusal(401, "login", "The access token is not valid.", { "WWW-Authenticate": REALM + ', error="invalid_token"' });
const UNAVAILABLE = refusal(503, "transient", "The access token cannot be validated right now; try again shortly.", { "Retry-After": "5" });
const OTHER_TENANT = refusal(403, "forbidden", "The access token is not valid for this tenant.");

function authRefusal(f: AuthFailure): Refusal {
  if (f.status === 503) return UNAVAILABLE;
  if (f.error === "invalid_request") return BAD_REQUEST;
  if (f.error === "invalid_token") return BAD_TOKEN;
  return NO_TOKEN;
}

export function identify(st: RequestState): Verdict {
  const tenant = st.tenant;
  const c = st.c;
  if (tenant === undefined || c === undefined) return OUT_OF_ORDER;
  if (tenant.anonymous || c.public) return undefined;
  const route = st.route;
  const maxAge = route !== undefined && route.token_max_age !== undefined ? route.token_max_age : gw.tokenMaxAge(c.interaction);
  const [id, failure] = authenticate(ngxVar.http_authorization, tenant, maxAge);
  if (id === undefined) return authRefusal(failure!);
  if (gw.checkTenantClaim && id.tenant !== undefined && id.tenant !== tenant.id) {
    countAuth(tenant.id, "claim", "tenant_mismatch");
    return OTHER_TENANT;
  }
  st.id = id;
  ngxVar.fe_user_id = id.sub ?? "";
  ngxVar.fe_client_id = id.client_id ?? "";
  ngxVar.fe_patient = id.patient ?? "";
  return undefined;
}
