/**
 * The audit trail's metrics, from its dict (counted there by the writer and the shipper, once
 * per batch or chunk, never per request): events, batches, spool bytes, drops, gaps, and per
 * sink the bytes shipped, the bytes it still lags and its failed deliveries.
 */
import * as policy from "../generated/policy";

const format = string.format;

function num(d: SharedDict, key: string): number {
  const [v] = d.get(key);
  return typeof v === "number" ? v : 0;
}

export function auditMetrics(): string {
  const d = ngx.shared.fe_audit;
  const cfg = policy.audit;
  if (d === undefined || cfg === undefined) return "";
  const lines: string[] = [
    "# HELP fe_audit_events_total Audit events written to the spool.",
    "# TYPE fe_audit_events_total counter",
    "fe_audit_events_total " + format("%d", num(d, "events")),
    "# HELP fe_audit_batches_total Sealed records written to the spool (batches, gaps, open and close).",
    "# TYPE fe_audit_batches_total counter",
    "fe_audit_batches_total " + format("%d", num(d, "batches")),
    "# HELP fe_audit_spool_bytes Bytes in the spool's segments (recounted by the shipper).",
    "# TYPE fe_audit_spool_bytes gauge",
    "fe_audit_spool_bytes " + format("%d", num(d, "spool_bytes")),
    "# HELP fe_audit_dropped_total Audit events lost (buffer full, spool full, or segments dropped under drop-oldest); each loss is a gap seal in the chain.",
    "# TYPE fe_audit_dropped_total counter",
    "fe_audit_dropped_total " + format("%d", num(d, "dropped")),
    "# HELP fe_audit_gaps_total Gap seals written to the chain.",
    "# TYPE fe_audit_gaps_total counter",
    "fe_audit_gaps_total " + format("%d", num(d, "gaps")),
    "# HELP fe_audit_sink_shipped_bytes_total Spool bytes a sink has taken.",
    "# TYPE fe_audit_sink_shipped_bytes_total counter",
  ];
  for (const s of cfg.sinks) lines.push('fe_audit_sink_shipped_bytes_total{sink="' + s.id + '"} ' + format("%d", num(d, "shipped\t" + s.id)));
  lines.push("# HELP fe_audit_sink_lag_bytes Spool bytes a sink does not have yet.");
  lines.push("# TYPE fe_audit_sink_lag_bytes gauge");
  for (const s of cfg.sinks) lines.push('fe_audit_sink_lag_bytes{sink="' + s.id + '"} ' + format("%d", num(d, "lag\t" + s.id)));
  lines.push("# HELP fe_audit_sink_failures_total Deliveries a sink refused or that failed (each is retried).");
  lines.push("# TYPE fe_audit_sink_failures_total counter");
  for (const s of cfg.sinks) lines.push('fe_audit_sink_failures_total{sink="' + s.id + '"} ' + format("%d", num(d, "fail\t" + s.id)));
  return table.concat(lines, "\n") + "\n";
}
