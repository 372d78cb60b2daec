/**
 * log_by_lua: metrics. Labels come from $fe_labels (set in access, and it survives the
 * internal redirect to the error page, unlike ngx.ctx); requests refused before classification
 * count as tenant/interaction/type "none".
 */
import * as gw from "../core/gateway";
import { record } from "../metrics/metrics";

const ngxVar = ngx.var;
const NONE = "none\tnone\tnone";

export function run(this: void): void {
  const labels = ngxVar.fe_labels;
  // ngx.now() is the cached event-loop time, like $request_time, without formatting and
  // re-parsing a string.
  const seconds = ngx.now() - ngx.req.start_time();
  record(labels === undefined || labels === "" ? NONE : labels, ngx.status, seconds, gw.maxSeries);
}
