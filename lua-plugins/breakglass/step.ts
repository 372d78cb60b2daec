/**
 * Pipeline step, break-glass: a clinician's declared emergency (README). A request that
 * carries `X-Break-Glass: <reason>` on a tenant with `breakGlass`, from a token that holds the
 * tenant's break-glass scope, is authorized without the tenant's `compartmentFor` and with
 * the policy's break-glass scopes added to the token's; the audit event records the reason,
 * the upstream gets it as X-Break-Glass, and the cache is bypassed. Anything else that asks
 * for it is refused, so a client never believes it broke glass when it did not.
 */
import { OUT_OF_ORDER, refusal, type Refusal, type RequestState, type Verdict } from "../core/request";
import type { Identity } from "../auth/cache";
import type { BreakGlassIR, TenantIR } from "../generated/policy";
import * as policy from "../generated/policy";
import { countBreakGlass } from "../metrics/metrics";
import { knowScopes } from "../scopes/authorize";

const ngxVar = ngx.var;
const req = ngx.req;
const find = string.find;

// A token's break-glass scope is the policy's, not a SMART scope that failed to parse.
const eligibility = new LuaTable<string, boolean>();
for (const t of policy.tenants) if (t.break_glass !== undefined) eligibility.set(t.break_glass.scope, true);
knowScopes(eligibility);

const NOT_ENABLED = refusal(403, "forbidden", "Break-glass access is not enabled for this tenant.");
const NOT_ELIGIBLE = refusal(403, "forbidden", "The access token does not allow break-glass access.");
const REPEATED = refusal(400, "invalid", "X-Break-Glass must be given once.");

/** A reason outside the tenant's list: its refusal names the list (policy data, not the client's value). */
const badReasons = new LuaTable<string, Refusal>();
function badReason(tenant: TenantIR, bg: BreakGlassIR): Refusal {
  let r = badReasons.get(tenant.id);
  if (r === undefined) {
    r = refusal(400, "invalid", "X-Break-Glass must be one of these reason codes: " + bg.reason_list + ".");
    badReasons.set(tenant.id, r);
  }
  return r;
}

interface Glass {
  /** Per tenant: the token's identity with that tenant's break-glass scopes, made once per token. */
  bg_ids?: LuaTable<string, Identity>;
}

function holds(scopes: string, wanted: string): boolean {
  const [at] = find(" " + scopes + " ", " " + wanted + " ", 1, true);
  return at !== undefined;
}

function elevated(id: Identity, tenant: TenantIR, bg: BreakGlassIR): Identity {
  if (bg.scopes === "") return id;
  const g = id as unknown as Glass;
  let ids = g.bg_ids;
  if (ids === undefined) {
    ids = new LuaTable<string, Identity>();
    g.bg_ids = ids;
  }
  let e = ids.get(tenant.id);
  if (e === undefined) {
    e = {
      issuer: id.issuer,
      tenant: id.tenant,
      sub: id.sub,
      client_id: id.client_id,
      scope: id.scope === "" ? bg.scopes : id.scope + " " + bg.scopes,
      patient: id.patient,
      fhir_user: id.fhir_user,
      exp: id.exp,
      at: id.at,
      via: id.via,
      tid: id.tid,
    };
    ids.set(tenant.id, e);
  }
  return e;
}

export function breakGlass(st: RequestState): Verdict {
  const asked = ngxVar.http_x_break_glass;
  if (asked === undefined) return undefined;
  const tenant = st.tenant;
  const c = st.c;
  if (tenant === undefined || c === undefined) return OUT_OF_ORDER;
  // Nothing to break on metadata or smart-configuration: a client may send the header on every call.
  if (c.public) return undefined;
  const bg = tenant.break_glass;
  if (bg === undefined) {
    countBreakGlass(tenant.id, "not_enabled");
    return NOT_ENABLED;
  }
  // $http_x_break_glass is the first of several; two reasons are one too many.
  const [headers] = req.get_headers();
  if (type(headers["x-break-glass"]) === "table") {
    countBreakGlass(tenant.id, "bad_reason");
    return REPEATED;
  }
  if (bg.reasons.get(asked) !== true) {
    countBreakGlass(tenant.id, "bad_reason");
    return badReason(tenant, bg);
  }
  // A listed code: recorded in the audit event whether or not the token may use it.
  st.breakGlass = asked;
  const id = st.id;
  if (id === undefined || !holds(id.scope, bg.scope)) {
    countBreakGlass(tenant.id, "not_eligible");
    return NOT_ELIGIBLE;
  }
  st.glassBroken = true;
  st.id = elevated(id, tenant, bg);
  ngxVar.fe_break_glass = asked;
  countBreakGlass(tenant.id, asked);
  return undefined;
}
