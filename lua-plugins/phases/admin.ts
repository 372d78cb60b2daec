/** The admin listener (loopback by default): Prometheus metrics and a health check. */
import * as gw from "../core/gateway";
import { render } from "../metrics/metrics";
import { auditMetrics } from "../audit/metrics";

export function metrics(this: void): void {
  ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8";
  ngx.print(render(gw.version) + auditMetrics());
}

export function healthz(this: void): void {
  ngx.header["Content-Type"] = "application/json";
  ngx.print('{"status":"ok","version":"' + gw.version + '"}\n');
}
