/**
 * Pipeline step 5, authorization: SMART scopes and the patient compartment (scopes/authorize),
 * Bundles entry by entry (scopes/bundle), and, once the upstream target is set, the checks of
 * writes under patient scopes against the body and the resource already there.
 *
 * In shadow mode (tenant or route) a denial is counted and the request goes on.
 */
import { OUT_OF_ORDER, refusal, type RequestState, type Verdict } from "../core/request";
import type { IssueDetail } from "../core/outcome";
import * as gw from "../core/gateway";
import * as fhir from "../generated/fhir_r4";
import type { TenantIR } from "../generated/policy";
import type { Identity } from "../auth/cache";
import { countScopeDenial } from "../metrics/metrics";
import { searchArgs, searchKey } from "./args";
import { authorize, criteriaDenial, criteriaOf, refusing, SEARCHES, type AuthzRules, type WriteCheck } from "./authorize";
import { authorizeBundle } from "./bundle";
import { MAX_PARAMS } from "../http/safety";
import { existingInCompartment, UPSTREAM_ERROR } from "./fetch";
import { checkWriteBody, type WriteBodyError } from "./write";
import type { Classification } from "../fhir/classify";

const req = ngx.req;
const ngxVar = ngx.var;

const WRITE_BODY_MESSAGE: Record<WriteBodyError, string> = {
  wrong_type: "the resource must reference the patient in context",
  not_patient: "the Patient resource must be the patient in context",
  no_patient: "the resource must reference the patient in context",
  other_patient: "every compartment reference must name the patient in context, and {path} names another patient",
  unchecked_reference: "every compartment reference must name the patient in context, and {path} holds one the gateway cannot check (use a relative Type/id reference)",
};
const WRITE_EXISTING = refusal(403, "forbidden", "Not allowed by the token's scopes: the resource is outside the patient's compartment.");

/**
 * A break-glass request's rules: the tenant's, without `compartmentFor` (user/ and system/
 * scopes reach every patient, as SMART defines them). Made once per tenant.
 */
const glassRules = new LuaTable<string, AuthzRules>();
function rulesOf(st: RequestState, tenant: TenantIR): AuthzRules {
  if (!st.glassBroken) return tenant;
  let r = glassRules.get(tenant.id);
  if (r === undefined) {
    r = { operations: tenant.operations, compartment_search: tenant.compartment_search, compartment_for: undefined, reject_invalid_scopes: tenant.reject_invalid_scopes };
    glassRules.set(tenant.id, r);
  }
  return r;
}

function authorizeBatch(st: RequestState, tenant: TenantIR, id: Identity): Verdict {
  if (st.doc === undefined) return OUT_OF_ORDER;
  const [denied, berr] = authorizeBundle(st.doc, id, gw.resourceTypes, ngx.decode_args, rulesOf(st, tenant), MAX_PARAMS);
  if (denied === undefined) return refusal(400, "invalid", "The Bundle cannot be authorized: " + (berr ?? "malformed") + ".");
  if (denied.length === 0) return undefined;
  const issues: IssueDetail[] = [];
  for (const d of denied) {
    countScopeDenial(tenant.id, d.type, d.missing, st.shadow);
    issues.push({ code: "forbidden", message: "Not allowed by the token's scopes: " + d.message + ".", expression: "Bundle.entry[" + tostring(d.index) + "]" });
  }
  if (st.shadow) {
    st.shadowed = "forbidden";
    return undefined;
  }
  return { status: 403, code: "forbidden", message: "", issues };
}

/**
 * A conditional write's criteria are a search of its type, and reveal what it matches (a 200
 * instead of a 201): checked as that search, with the same scopes, and under patient scopes
 * they must name the patient in context (nothing is injected into them).
 */
function authorizeCriteria(st: RequestState, tenant: TenantIR, rules: AuthzRules, id: Identity, c: Classification, criteria: string): Verdict {
  const message = criteriaDenial(id, c, criteria, ngx.decode_args, refusing(rules));
  if (message === undefined) return undefined;
  countScopeDenial(tenant.id, c.resource_type ?? "none", "conditional_criteria", st.shadow);
  if (st.shadow) {
    st.shadowed = "forbidden";
    return undefined;
  }
  return refusal(403, "forbidden", "Not allowed by the token's scopes: the conditional criteria of this write are a search, and " + message + ".");
}

export function authorizeRequest(st: RequestState): Verdict {
  const id = st.id;
  if (id === undefined) return undefined;
  const tenant = st.tenant;
  const c = st.c;
  if (tenant === undefined || c === undefined) return OUT_OF_ORDER;
  const route = st.route;
  st.shadow = route !== undefined && route.shadow !== undefined ? route.shadow : tenant.authorization === "shadow";
  if (c.interaction === "batch") return authorizeBatch(st, tenant, id);
  // Hoisted: a conditional call among the arguments compiles to __TS__SparseArray* (STYLE.md).
  const memoKey = SEARCHES[c.interaction] === true ? searchKey(st.method, st.args) : undefined;
  const rules = rulesOf(st, tenant);
  const verdict = authorize(id, c, searchArgs, rules, memoKey);
  if (verdict !== undefined) {
    if ("inject" in verdict) st.inject = verdict.inject;
    else if ("response" in verdict) st.check = verdict;
    else if ("write" in verdict) st.write = verdict;
    else {
      countScopeDenial(tenant.id, c.compartment_type ?? c.resource_type ?? "none", verdict.missing ?? verdict.reason, st.shadow);
      if (!st.shadow) return refusal(403, "forbidden", "Not allowed by the token's scopes: " + verdict.message + ".");
      st.shadowed = "forbidden";
    }
  }
  // Only a create reads If-None-Exist: no header lookup for the reads on the hot path.
  const ifNoneExist = c.interaction === "create" ? ngxVar.http_if_none_exist : undefined;
  const criteria = criteriaOf(c, st.args, ifNoneExist);
  if (criteria === undefined) return undefined;
  const denied = authorizeCriteria(st, tenant, rules, id, c, criteria);
  if (denied !== undefined) return denied;
  // Criteria that name the patient in context match only what is in the compartment: there
  // is no one resource at the target to fetch and look at first.
  const w = st.write;
  if (w !== undefined && c.id === undefined) st.write = { write: true, type: w.type, patient: w.patient, body: w.body, existing: false };
  return undefined;
}

function writeBodyRefusal(e: WriteBodyError, path: string | undefined, rtype: string): Verdict {
  const where = path === undefined ? rtype : rtype + "." + path;
  const [message] = string.gsub(WRITE_BODY_MESSAGE[e], "{path}", where);
  return refusal(403, "forbidden", "Not allowed by the token's scopes: " + message + ".");
}

/** A write under patient scopes: the body must keep to the patient's compartment, and what is there must be theirs. */
export function checkWrite(st: RequestState): Verdict {
  const w: WriteCheck | undefined = st.write;
  if (w === undefined || !w.body) return undefined;
  const tenant = st.tenant;
  if (tenant === undefined) return OUT_OF_ORDER;
  // fhir/body decoded it: a create or update does not get here without one.
  const doc = st.doc;
  if (doc === undefined) return OUT_OF_ORDER;
  const [err, path] = checkWriteBody(doc, w.type, w.patient, fhir.patient_paths, gw.resourceTypes);
  if (err === undefined) return undefined;
  countScopeDenial(tenant.id, w.type, "compartment_write_body", st.shadow);
  if (st.shadow) st.shadowed = "forbidden";
  return st.shadow ? undefined : writeBodyRefusal(err, path, w.type);
}

/**
 * The second half of a patient-scoped write's check, which asks the upstream: is what the
 * update or delete replaces in the patient's compartment? After the cost tokens are spent, so
 * a throttled client never makes the gateway call the upstream.
 */
export function checkExisting(st: RequestState): Verdict {
  const w: WriteCheck | undefined = st.write;
  if (w === undefined || !w.existing) return undefined;
  const tenant = st.tenant;
  if (tenant === undefined) return OUT_OF_ORDER;
  const existing = existingInCompartment(w.type, w.patient);
  if (existing === "upstream_error") return UPSTREAM_ERROR;
  // Update may create (404); delete of what does not exist is refused, so ids cannot be probed.
  if (existing === "in" || (existing === "absent" && w.body)) return undefined;
  countScopeDenial(tenant.id, w.type, "compartment_write_existing", st.shadow);
  if (st.shadow) st.shadowed = "forbidden";
  return st.shadow ? undefined : WRITE_EXISTING;
}
