/**
 * log_by_lua: metrics. Labels come from $fe_labels (set in access, and it survives the
 * internal redirect to the error page, unlike ngx.ctx); requests refused before classification
 * count as tenant/interaction/type "none".
 */
import * as gw from "../core/gateway";
import { record } from "../metrics/metrics";

const ngxVar = ngx.var;
const NONE = "none\tnone\tnone";
const find = string.find;
const sub = string.sub;

export function run(this: void): void {
  const labels = ngxVar.fe_labels;
  // ngx.now() is the cached event-loop time, like $request_time, without formatting and
  // re-parsing a string.
  const seconds = ngx.now() - ngx.req.start_time();
  if (labels === undefined || labels === "") {
    record(NONE, "none", ngx.status, seconds, gw.maxSeries);
    return;
  }
  const [tab] = find(labels, "\t", 1, true);
  const tenant = tab === undefined ? "none" : sub(labels, 1, tab - 1);
  record(labels, tenant, ngx.status, seconds, gw.maxSeries);
}
