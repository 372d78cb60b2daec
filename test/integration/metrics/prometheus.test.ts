import parsePrometheusTextFormat, { type PromMetric } from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { stack } from "../../harness/env.ts";

async function scrape(): Promise<{ text: string; metrics: PromMetric[] }> {
  const res = await fetch(`${stack().admin}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  const text = await res.text();
  return { text, metrics: parsePrometheusTextFormat(text) };
}

function counter(metrics: PromMetric[], name: string, labels: Record<string, string>): number {
  const m = metrics.find((x) => x.name === name);
  const series = m?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
  return Number(series?.value ?? 0);
}

/**
 * parse-prometheus-text-format 1.1.1 drops the labels, sum and count of labelled histograms
 * (it keeps one bucket set), so the per-tenant count is read from its own sample line.
 */
function histogramCount(text: string, tenant: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`fe_request_duration_seconds_count{tenant="${tenant}"} `));
  return Number(line?.split(" ")[1] ?? 0);
}

describe("/metrics", () => {
  it("parses as Prometheus text, and its counters move with traffic", async () => {
    const labels = { tenant: "globex", interaction: "search-type", resource_type: "Encounter", status_class: "2xx" };
    const before = await scrape();
    const c0 = counter(before.metrics, "fe_requests_total", labels);
    const h0 = histogramCount(before.text, "globex");
    for (let i = 0; i < 3; i++) expect((await fetch(`${stack().gateway}/globex/fhir/Encounter`)).status).toBe(200);
    await fetch(`${stack().gateway}/globex/fhir/Nope`);

    const after = await scrape();
    const types = new Map(after.metrics.map((m) => [m.name, m.type]));
    expect(types.get("fe_requests_total")).toBe("COUNTER");
    expect(types.get("fe_request_duration_seconds")).toBe("HISTOGRAM");
    expect(counter(after.metrics, "fe_requests_total", labels) - c0).toBe(3);
    expect(histogramCount(after.text, "globex") - h0).toBe(4);
    // Buckets are cumulative and end at +Inf, which equals the count.
    const inf = after.text.split("\n").find((l) => l.startsWith('fe_request_duration_seconds_bucket{tenant="globex",le="+Inf"} '));
    expect(Number(inf?.split(" ")[1])).toBe(histogramCount(after.text, "globex"));
    expect(counter(after.metrics, "fe_requests_total", { tenant: "globex", interaction: "none", status_class: "4xx" })).toBeGreaterThan(0);
    expect(after.text).toContain(`fe_build_info{version="${stack().version}"} 1`);
  });

  it("is served only on the admin listener", async () => {
    const res = await fetch(`${stack().gateway}/metrics`);
    expect(res.status).toBe(404);
  });
});
