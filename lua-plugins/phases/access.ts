/**
 * access_by_lua: the request path as a pipeline. Each step lives in its concern's folder,
 * fills in the request state, and returns a verdict: undefined to go on, or a refusal. The
 * first refusal ends the request here, as an OperationOutcome, before anything reaches the
 * upstream. Later steps (audit context, policy hooks) plug in where they belong.
 *
 *   safety -> tenant -> classify (+ route, cost) -> identity -> body -> break-glass (what the
 *   authorization allows) -> authorization -> route verdict
 *   -> upstream target -> write body checks -> cost tokens -> the write's current version
 *   -> cache plan (key, partition, or the write location) -> durable audit writes (the write
 *   location) -> the audit event's pipeline half -> checked read (sends the response itself)
 *   -> on to the cache or write location. With a fail-closed audit spool that is full, FHIR
 *   requests are refused right after classification.
 *
 * Headers are the conf's job: it strips client identity headers and sets the gateway's own,
 * X-Request-ID and traceparent included, from the `$fe_*` variables (core/vars).
 */
import { newRequest, type Refusal, type RequestState } from "../core/request";
import { sendRefusal } from "../core/outcome";
import { checkSafety } from "../http/safety";
import { resolveTenant, applyRoute, setUpstream } from "../routing/step";
import { classifyRequest, labels } from "../fhir/step";
import { identify } from "../auth/step";
import { checkBody } from "../fhir/body";
import { breakGlass } from "../breakglass/step";
import { authorizeRequest, checkExisting, checkWrite } from "../scopes/step";
import { serveChecked } from "../scopes/fetch";
import { spendTokens } from "../ratelimit/step";
import { markRefused, planCache, proxyVia } from "../cache/step";
import { noteAllowed, noteRefused } from "../audit/event";
import { durableWrite, spoolRoom } from "../audit/step";

const ngxVar = ngx.var;
const req = ngx.req;

/** The one place a refusal becomes the response; it carries what is known into the metrics labels. */
function refuse(st: RequestState, r: Refusal): never {
  ngxVar.fe_labels = labels(st);
  markRefused(st);
  noteRefused(st, r);
  return sendRefusal(r, ngxVar.fe_request_id);
}

export function run(this: void): void {
  const st = newRequest(req.get_method(), ngxVar.request_uri ?? "");
  const v =
    checkSafety(st) ??
    resolveTenant(st) ??
    classifyRequest(st) ??
    spoolRoom(st) ??
    identify(st) ??
    checkBody(st) ??
    breakGlass(st) ??
    authorizeRequest(st) ??
    applyRoute(st) ??
    setUpstream(st) ??
    checkWrite(st) ??
    spendTokens(st) ??
    checkExisting(st) ??
    planCache(st) ??
    durableWrite(st) ??
    noteAllowed(st) ??
    serveChecked(st) ??
    proxyVia(st);
  if (v !== undefined) refuse(st, v);
}
