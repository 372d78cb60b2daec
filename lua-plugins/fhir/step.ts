/**
 * Pipeline step 3, classification: which FHIR interaction the request is, on which type, at
 * what cost, and the tenant's route for it. Anything that does not classify is refused here.
 */
import * as gw from "../core/gateway";
import { OUT_OF_ORDER, refusal, type Refusal, type RequestState, type Verdict } from "../core/request";
import { ALLOW } from "../http/safety";
import { classify, type ClassifyError } from "./classify";
import { requestCost } from "./cost";

const ngxVar = ngx.var;

const CLASSIFY_REFUSAL: Record<ClassifyError, Refusal> = {
  bad_path: refusal(400, "invalid", "The path is not a FHIR REST path."),
  bad_id: refusal(400, "invalid", "The resource id is not a valid FHIR id."),
  bad_operation: refusal(400, "invalid", "The operation name is not valid."),
  unknown_type: refusal(404, "not-supported", "The resource type is not a FHIR R4 resource type."),
  method: refusal(405, "not-supported", "The method is not allowed for this FHIR interaction.", ALLOW),
  not_found: refusal(404, "not-found", "No FHIR interaction matches this path."),
};

/** Metrics labels of a request: what is known of it so far. */
export function labels(st: RequestState): string {
  const c = st.c;
  const tenant = st.tenant === undefined ? "none" : st.tenant.id;
  if (c === undefined) return tenant + "\tnone\tnone";
  return tenant + "\t" + c.interaction + "\t" + (c.resource_type ?? "none");
}

export function classifyRequest(st: RequestState): Verdict {
  const tenant = st.tenant;
  if (tenant === undefined) return OUT_OF_ORDER;
  const [c, err] = classify(st.method, st.fhirPath, gw.resourceTypes);
  if (c === undefined) return CLASSIFY_REFUSAL[err!];
  st.c = c;
  ngxVar.fe_labels = labels(st);
  const route = gw.matchRoute(tenant, c);
  st.route = route;
  // Computed once, here, and only where a budget will read it; a batch's entries and a POST
  // _search's form are added by fhir/body.
  if (tenant.budgets.length > 0 || (tenant.cache !== undefined && tenant.cache.miss_budget !== undefined)) {
    const own = route === undefined ? undefined : route.cost;
    c.cost = own !== undefined ? own : requestCost(c, st.args, tenant.costs);
  }
  return undefined;
}
