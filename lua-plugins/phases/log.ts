/**
 * log_by_lua: metrics. Labels come from $fe_labels (set in access, and it survives the
 * internal redirect to the error page, unlike ngx.ctx); requests refused before classification
 * count as tenant/interaction/type "none".
 */
import * as gw from "../core/gateway";
import { record } from "../metrics/metrics";

const ngxVar = ngx.var;
const find = string.find;
const sub = string.sub;

export function run(this: void): void {
  const labels = ngxVar.fe_labels;
  let tenant = "none";
  let interaction = "none";
  let rtype = "none";
  if (labels !== undefined && labels !== "") {
    const [a] = find(labels, "\t", 1, true);
    const [b] = a === undefined ? [undefined] : find(labels, "\t", a + 1, true);
    if (a !== undefined && b !== undefined) {
      tenant = sub(labels, 1, a - 1);
      interaction = sub(labels, a + 1, b - 1);
      rtype = sub(labels, b + 1);
    }
  }
  const seconds = tonumber(ngxVar.request_time) ?? 0;
  record(tenant, interaction, rtype, ngx.status, seconds, gw.maxSeries);
}
