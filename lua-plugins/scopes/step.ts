/**
 * Pipeline step 5, authorization: SMART scopes and the patient compartment (scopes/authorize),
 * Bundles entry by entry (scopes/bundle), and, once the upstream target is set, the checks of
 * writes under patient scopes against the body and the resource already there.
 *
 * In shadow mode (tenant or route) a denial is counted and the request goes on.
 */
import * as cjson from "cjson.safe";
import { OUT_OF_ORDER, refusal, type RequestState, type Verdict } from "../core/request";
import type { IssueDetail } from "../core/outcome";
import * as gw from "../core/gateway";
import * as fhir from "../generated/fhir_r4";
import type { TenantIR } from "../generated/policy";
import type { Identity } from "../auth/cache";
import { countScopeDenial } from "../metrics/metrics";
import { searchArgs, searchKey } from "./args";
import { authorize, SEARCHES } from "./authorize";
import { authorizeBundle } from "./bundle";
import { existingInCompartment, UPSTREAM_ERROR } from "./fetch";
import { inCompartment } from "./response";

const req = ngx.req;

const EMPTY_BUNDLE = refusal(400, "invalid", "The Bundle is empty or too large to authorize entry by entry.");
const BUNDLE_ON_DISK = refusal(413, "too-costly", "The Bundle is empty or too large to authorize entry by entry.");
const WRITE_BODY = refusal(403, "forbidden", "Not allowed by the token's scopes: the resource must reference the patient in context.");
const WRITE_EXISTING = refusal(403, "forbidden", "Not allowed by the token's scopes: the resource is outside the patient's compartment.");

function authorizeBatch(st: RequestState, tenant: TenantIR, id: Identity): Verdict {
  req.read_body();
  const body = req.get_body_data();
  if (body === undefined) return req.get_body_file() === undefined ? EMPTY_BUNDLE : BUNDLE_ON_DISK;
  const [denied, berr] = authorizeBundle(body, id, gw.resourceTypes, ngx.decode_args, tenant);
  if (denied === undefined) return refusal(400, "invalid", "The Bundle cannot be authorized: " + (berr ?? "malformed") + ".");
  if (denied.length === 0) return undefined;
  const issues: IssueDetail[] = [];
  for (const d of denied) {
    countScopeDenial(tenant.id, d.type, d.missing, st.shadow);
    issues.push({ code: "forbidden", message: "Not allowed by the token's scopes: " + d.message + ".", expression: "Bundle.entry[" + tostring(d.index) + "]" });
  }
  if (st.shadow) return undefined;
  return { status: 403, code: "forbidden", message: "", issues };
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
  const verdict = authorize(id, c, searchArgs, tenant, memoKey);
  if (verdict === undefined) return undefined;
  if ("inject" in verdict) st.inject = verdict.inject;
  else if ("response" in verdict) st.check = verdict;
  else if ("write" in verdict) st.write = verdict;
  else {
    countScopeDenial(tenant.id, c.compartment_type ?? c.resource_type ?? "none", verdict.missing ?? verdict.reason, st.shadow);
    if (!st.shadow) return refusal(403, "forbidden", "Not allowed by the token's scopes: " + verdict.message + ".");
  }
  return undefined;
}

/** A write under patient scopes: the body must reference the patient, and what is there must be theirs. */
export function checkWrite(st: RequestState): Verdict {
  const w = st.write;
  if (w === undefined) return undefined;
  const tenant = st.tenant;
  if (tenant === undefined) return OUT_OF_ORDER;
  if (w.body) {
    req.read_body();
    const body = req.get_body_data();
    const [doc] = body === undefined ? [undefined] : cjson.decode(body);
    if (type(doc) !== "table" || !inCompartment(doc as Record<string, unknown>, w.type, w.patient, fhir.patient_paths)) {
      countScopeDenial(tenant.id, w.type, "compartment_write_body", st.shadow);
      if (!st.shadow) return WRITE_BODY;
    }
  }
  if (!w.existing) return undefined;
  const existing = existingInCompartment(w.type, w.patient);
  if (existing === "upstream_error") return UPSTREAM_ERROR;
  // Update may create (404); delete of what does not exist is refused, so ids cannot be probed.
  if (existing === "in" || (existing === "absent" && w.body)) return undefined;
  countScopeDenial(tenant.id, w.type, "compartment_write_existing", st.shadow);
  return st.shadow ? undefined : WRITE_EXISTING;
}
