/**
 * access_by_lua: request id -> path safety -> tenant -> FHIR classification -> route ->
 * upstream headers and target. Every refusal goes through core/outcome, so it is an
 * OperationOutcome, and nothing refused reaches the upstream.
 */
import * as gw from "../core/gateway";
import { sendIssues, sendProblem, type IssueCode, type IssueDetail } from "../core/outcome";
import { authorizeBundle } from "../scopes/bundle";
import { classify, isSupportedMethod, type ClassifyError } from "../fhir/classify";
import { checkPath, checkQuery, splitTarget } from "../http/uri";
import { isValidRequestId, nextTraceparent } from "../http/request_id";
import { fhirPath, normalizeHost, resolve } from "../routing/tenant";
import { authenticate, type AuthFailure } from "../auth/identity";
import { countAuth, countScopeDenial } from "../metrics/metrics";
import { authorize, toSearchArgs, type ResponseCheck, type WriteCheck } from "../scopes/authorize";
import { existingInCompartment } from "../scopes/fetch";
import { inCompartment } from "../scopes/response";
import * as cjson from "cjson.safe";
import * as fhir from "../generated/fhir_r4";
import { fetchChecked } from "../scopes/fetch";
import type { SearchArgs } from "../scopes/compartment";

const req = ngx.req;
const ngxVar = ngx.var;
const ALLOW = { Allow: "GET, HEAD, POST, PUT, PATCH, DELETE" };
/** Longest request target accepted (nginx's header buffers are larger, for long tokens). */
const MAX_URI = 8192;
const REALM = 'Bearer realm="fhir-edge"';
const CHALLENGE = {
  none: { "WWW-Authenticate": REALM },
  invalid_request: { "WWW-Authenticate": REALM + ', error="invalid_request"' },
  invalid_token: { "WWW-Authenticate": REALM + ', error="invalid_token"' },
};
const RETRY = { "Retry-After": "5" };

/** Per-request facts the later phases need; also mirrored into $fe_labels for error pages. */
export interface RequestCtx {
  request_id: string;
  tenant: string;
  interaction: string;
  resource_type: string;
}

const CLASSIFY_PROBLEM: Record<ClassifyError, [number, IssueCode, string]> = {
  bad_path: [400, "invalid", "The path is not a FHIR REST path."],
  bad_id: [400, "invalid", "The resource id is not a valid FHIR id."],
  bad_operation: [400, "invalid", "The operation name is not valid."],
  unknown_type: [404, "not-supported", "The resource type is not a FHIR R4 resource type."],
  method: [405, "not-supported", "The method is not allowed for this FHIR interaction."],
  not_found: [404, "not-found", "No FHIR interaction matches this path."],
};

function labels(ctx: RequestCtx): string {
  return ctx.tenant + "\t" + ctx.interaction + "\t" + ctx.resource_type;
}

/** Refusals carry what is known so far into the metrics labels. */
function refuse(ctx: RequestCtx, status: number, code: IssueCode, message: string, headers?: Record<string, string>): never {
  ngxVar.fe_labels = labels(ctx);
  return sendProblem({ status, code, message }, ctx.request_id, headers);
}

const MAX_ARGS = 100;
const TOO_MANY: SearchArgs = { _has: ["too many parameters"] };

/**
 * Search parameters for the scope checks: the query, plus the form body of POST _search.
 * More than MAX_ARGS, or a body nginx kept on disk, cannot be checked whole: they come back
 * as a `_has`, which every compartment check refuses.
 */
function searchArgs(this: void): SearchArgs {
  const [q, qerr] = req.get_uri_args(MAX_ARGS);
  if (qerr !== undefined) return TOO_MANY;
  const args = toSearchArgs(q);
  if (req.get_method() === "POST") {
    req.read_body();
    const [b, berr] = req.get_post_args(MAX_ARGS);
    if (b === undefined || berr !== undefined) return TOO_MANY;
    for (const [k, vs] of pairs(toSearchArgs(b))) {
      const into = args[k] ?? [];
      for (const v of vs) into.push(v);
      args[k] = into;
    }
  }
  return args;
}

/**
 * What a search's parameters are, as one string, for the per-token verdict memo: the query of
 * a GET, the query and form body of a POST _search. Undefined when the body is on disk.
 */
function searchKey(method: string, args: string | undefined): string | undefined {
  if (method === "GET" || method === "HEAD") return args ?? "";
  if (method !== "POST") return undefined;
  req.read_body();
  const body = req.get_body_data();
  if (body === undefined) return req.get_body_file() === undefined ? (args ?? "") : undefined;
  return (args ?? "") + "&" + body;
}

/** The client learns the kind of failure, never which check failed (that goes to metrics). */
function refuseAuth(ctx: RequestCtx, f: AuthFailure): never {
  if (f.status === 503) return refuse(ctx, 503, "transient", "The access token cannot be validated right now; try again shortly.", RETRY);
  if (f.error === "invalid_request") return refuse(ctx, 401, "login", "The Authorization header is not a single valid bearer token.", CHALLENGE.invalid_request);
  if (f.error === "invalid_token") return refuse(ctx, 401, "login", "The access token is not valid.", CHALLENGE.invalid_token);
  return refuse(ctx, 401, "login", "An access token is required.", CHALLENGE.none);
}

export function run(this: void): void {
  const nginxId = ngxVar.request_id ?? "";
  const incoming = ngxVar.http_x_request_id;
  const requestId = incoming !== undefined && isValidRequestId(incoming) ? incoming : nginxId;
  ngxVar.fe_request_id = requestId;
  // Plain Lua table, not ngx.ctx: nothing later reads it (the log phase uses $fe_labels), and
  // the first ngx.ctx access per request allocates and registers a table.
  const ctx: RequestCtx = { request_id: requestId, tenant: "none", interaction: "none", resource_type: "none" };

  const method = req.get_method();
  const uri = ngxVar.request_uri ?? "";
  if (uri.length > MAX_URI) return refuse(ctx, 414, "too-long", "The request URI is too long.");
  const [path, args] = splitTarget(uri);
  if (checkPath(path) !== undefined) {
    return refuse(ctx, 400, "invalid", "The request path has an encoded, empty or dot segment, or a character FHIR paths do not use.");
  }
  if (args !== undefined && checkQuery(args) !== undefined) {
    return refuse(ctx, 400, "invalid", "The query string holds a NUL or control character.");
  }
  if (!isSupportedMethod(method)) {
    return refuse(ctx, 405, "not-supported", "The method is not supported by this FHIR gateway.", ALLOW);
  }

  const rawHost = ngxVar.http_host;
  const host = normalizeHost(rawHost);
  if (rawHost !== undefined && host === undefined) {
    return refuse(ctx, 400, "invalid", "The Host header is malformed.");
  }
  const [tenant, mode] = resolve(gw.index, undefined, host, path, ngxVar[gw.tenantHeaderVar]);
  if (tenant === undefined || mode === undefined) {
    return refuse(ctx, 404, "not-found", "No tenant matches this request.");
  }
  ctx.tenant = tenant.id;
  const fpath = fhirPath(tenant, mode, path);
  if (fpath === undefined) {
    return refuse(ctx, 404, "not-found", "The path is not under this tenant's FHIR base.");
  }

  const [c, err] = classify(method, fpath, gw.resourceTypes);
  if (c === undefined) {
    const p = CLASSIFY_PROBLEM[err!];
    return refuse(ctx, p[0], p[1], p[2], p[0] === 405 ? ALLOW : undefined);
  }
  ctx.interaction = c.interaction;
  if (c.resource_type !== undefined) ctx.resource_type = c.resource_type;
  ngxVar.fe_labels = labels(ctx);

  const route = gw.matchRoute(tenant, c);
  // Authentication before the route's own verdict: an anonymous client learns nothing about
  // which interactions a tenant allows.
  const keepAuth = route !== undefined && route.keep_authorization;
  let check: ResponseCheck | undefined;
  let write: WriteCheck | undefined;
  let injected: string | undefined;
  let shadow = false;
  if (!tenant.anonymous && !c.public) {
    const maxAge = route !== undefined && route.token_max_age !== undefined ? route.token_max_age : gw.tokenMaxAge(c.interaction);
    const [id, failure] = authenticate(ngxVar.http_authorization, tenant, maxAge);
    if (id === undefined) return refuseAuth(ctx, failure!);
    if (gw.checkTenantClaim && id.tenant !== undefined && id.tenant !== tenant.id) {
      countAuth(tenant.id, "claim", "tenant_mismatch");
      return refuse(ctx, 403, "forbidden", "The access token is not valid for this tenant.");
    }
    shadow = route !== undefined && route.shadow !== undefined ? route.shadow : tenant.authorization === "shadow";
    if (c.interaction === "batch") {
      req.read_body();
      const body = req.get_body_data();
      if (body === undefined) {
        return refuse(ctx, req.get_body_file() === undefined ? 400 : 413, req.get_body_file() === undefined ? "invalid" : "too-costly", "The Bundle is empty or too large to authorize entry by entry.");
      }
      const [denied, berr] = authorizeBundle(body, id, gw.resourceTypes, ngx.decode_args, tenant.operations, tenant.compartment_for, tenant.reject_invalid_scopes);
      if (denied === undefined) return refuse(ctx, 400, "invalid", "The Bundle cannot be authorized: " + (berr ?? "malformed") + ".");
      if (denied.length > 0) {
        const issues: IssueDetail[] = [];
        for (const d of denied) {
          countScopeDenial(tenant.id, d.type, d.missing, shadow);
          issues.push({ code: "forbidden", message: "Not allowed by the token's scopes: " + d.message + ".", expression: "Bundle.entry[" + tostring(d.index) + "]" });
        }
        if (!shadow) {
          ngxVar.fe_labels = labels(ctx);
          return sendIssues(403, issues, ctx.request_id);
        }
      }
    }
    // Hoisted: a conditional call among the arguments compiles to __TS__SparseArray* (see STYLE.md).
    const memoKey = c.interaction === "search-type" || c.interaction === "history-type" ? searchKey(method, args) : undefined;
    const verdict = c.interaction === "batch" ? undefined : authorize(id, c, searchArgs, tenant.operations, tenant.compartment_search === "inject", tenant.compartment_for, memoKey, tenant.reject_invalid_scopes);
    if (verdict !== undefined) {
      if ("inject" in verdict) injected = verdict.inject;
      else if ("response" in verdict) check = verdict;
      else if ("write" in verdict) write = verdict;
      else {
        countScopeDenial(tenant.id, c.compartment_type ?? c.resource_type ?? "none", verdict.missing ?? verdict.reason, shadow);
        if (!shadow) return refuse(ctx, 403, "forbidden", "Not allowed by the token's scopes: " + verdict.message + ".");
      }
    }
    ngxVar.fe_user_id = id.sub ?? "";
    ngxVar.fe_client_id = id.client_id ?? "";
    ngxVar.fe_patient = id.patient ?? "";
  }
  if (keepAuth) ngxVar.fe_authorization = ngxVar.http_authorization ?? "";
  if (route !== undefined) {
    if (route.deny) return refuse(ctx, 403, "forbidden", "This interaction is not allowed on this tenant.");
    if (route.cost !== undefined) c.cost = route.cost;
  }

  // The conf strips client identity headers and sends these with proxy_set_header: doing it
  // here cost ~10 clear_header/set_header calls, each a walk of the header list.
  ngxVar.fe_tenant_id = tenant.id;
  ngxVar.fe_traceparent = nextTraceparent(ngxVar.http_traceparent, nginxId);

  const up = tenant.upstream;
  let target = up.base_path + fpath;
  if (target === "") target = "/";
  ngxVar.fe_upstream = up.name;
  ngxVar.fe_upstream_host = gw.upstreamHost(tenant);
  ngxVar.fe_upstream_uri = injected !== undefined ? target + "?" + (args === undefined || args === "" ? injected : args + "&" + injected) : args === undefined ? target : target + "?" + args;

  if (write !== undefined) {
    const w = write;
    if (w.body) {
      req.read_body();
      const body = req.get_body_data();
      const [doc] = body === undefined ? [undefined] : cjson.decode(body);
      if (type(doc) !== "table" || !inCompartment(doc as Record<string, unknown>, w.type, w.patient, fhir.patient_paths)) {
        countScopeDenial(tenant.id, w.type, "compartment_write_body", shadow);
        if (!shadow) return refuse(ctx, 403, "forbidden", "Not allowed by the token's scopes: the resource must reference the patient in context.");
      }
    }
    if (w.existing) {
      const existing = existingInCompartment(w.type, w.patient);
      if (existing === "upstream_error") return refuse(ctx, 502, "transient", "The upstream FHIR server could not be reached or answered badly.");
      // Update may create (404); delete of what does not exist is refused, so ids cannot be probed.
      const ok = existing === "in" || (existing === "absent" && w.body);
      if (!ok) {
        countScopeDenial(tenant.id, w.type, "compartment_write_existing", shadow);
        if (!shadow) return refuse(ctx, 403, "forbidden", "Not allowed by the token's scopes: the resource is outside the patient's compartment.");
      }
    }
  }

  if (check !== undefined) {
    // Sent from here when it passes; otherwise nothing of it leaves the gateway.
    const outcome = fetchChecked(check, tenant.id, shadow);
    if (outcome === "upstream_error") return refuse(ctx, 502, "transient", "The upstream FHIR server could not be reached or answered badly.");
    return refuse(ctx, 403, "forbidden", "Not allowed by the token's scopes: the resource is outside what they grant.");
  }
}
