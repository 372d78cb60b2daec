/**
 * Latency budgets per scenario, at the fixed arrival rate the fallback uses (50% of the bare
 * proxy's saturation) or the rate a k6 run sets. Both drivers read them from here: k6 as
 * thresholds, the fallback as pass/fail columns. Pure module (loaded by k6 too).
 */
export interface Budget {
  /** Median, milliseconds. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Worst single request: catches flush stalls that percentiles hide. */
  readonly maxMs: number;
  /** Share of failed requests (network errors or 5xx) tolerated. */
  readonly errorRate: number;
}

export const BUDGETS = {
  poc: { p50Ms: 2, p99Ms: 10, maxMs: 50, errorRate: 0.001 },
  chart: { p50Ms: 2, p99Ms: 10, maxMs: 50, errorRate: 0.001 },
  search: { p50Ms: 3, p99Ms: 15, maxMs: 75, errorRate: 0.001 },
  writes: { p50Ms: 3, p99Ms: 15, maxMs: 75, errorRate: 0.001 },
  mixed: { p50Ms: 2, p99Ms: 10, maxMs: 50, errorRate: 0.001 },
  cache: { p50Ms: 1, p99Ms: 5, maxMs: 50, errorRate: 0.001 },
  export: { p50Ms: 3, p99Ms: 15, maxMs: 75, errorRate: 0.001 },
} as const satisfies Record<string, Budget>;

/**
 * What the full policy chain must cost relative to the bare proxy, measured in the same run
 * (the aim over the later issues; the report says where each run stands).
 */
export const AIMS = {
  /** Gateway throughput at saturation over the bare proxy's. */
  minThroughputRatio: 0.85,
  /** Gateway p99 minus bare p99 at 50% load, milliseconds. */
  maxP99DeltaMs: 0.5,
  /** A max over this many times the p99 is called a spike (a flush stall, a GC pause). */
  maxOverP99: 20,
} as const;

/** k6 thresholds for one scenario, keyed by k6's scenario tag. */
export function k6Thresholds(scenario: string, b: Budget): Record<string, string[]> {
  return {
    [`http_req_duration{scenario:${scenario}}`]: [`p(50)<${b.p50Ms}`, `p(99)<${b.p99Ms}`, `max<${b.maxMs}`],
    [`http_req_failed{scenario:${scenario}}`]: [`rate<${b.errorRate}`],
  };
}
