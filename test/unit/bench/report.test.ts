/**
 * What the bench reads from its tools and what it calls a failure: jit.v and jit.p output,
 * perf's per-library report, and the verdict on refusals and short fixed-rate runs.
 */
import { describe, expect, it } from "vitest";
import type { RunResult } from "../../../bench/h2load.ts";
import { pluginLinePattern, readTraceLog } from "../../../bench/lua/gateway-traces.ts";
import { parseDsoReport, parseFunctionLines, parseVmStates } from "../../../bench/profile.ts";
import { scenarioMarkdown, verdictOf, type TargetMeasure } from "../../../bench/report.ts";
import { BUDGETS } from "../../../bench/budgets.ts";

function run(requests: number, failed: number, extra: Partial<RunResult> = {}): RunResult {
  return {
    requests,
    ok2xx: requests - failed,
    failed,
    failedByStatus: failed > 0 ? { "403": failed } : {},
    seconds: 1,
    rps: requests,
    latencyMs: { mean: 1, p50: 1, p90: 1, p99: 1, p999: 1, max: 1 },
    sortedMs: new Float64Array([1]),
    ...extra,
  };
}

function target(name: string, opts: { satFailed?: number; rateFailed?: number; asked?: number; cpu?: number } = {}): TargetMeasure {
  return {
    name,
    description: name,
    saturation: run(10_000, opts.satFailed ?? 0),
    cpuUsPerRequest: opts.cpu ?? 30,
    saturationRounds: { requests: 10_000, failed: opts.satFailed ?? 0, failedByStatus: (opts.satFailed ?? 0) > 0 ? { "403": opts.satFailed ?? 0 } : {} },
    fixedRate: run(5_000, opts.rateFailed ?? 0, { asked: opts.asked ?? 5_000 }),
  };
}

describe("bench verdicts", () => {
  it("more than 1% non-2xx in either phase is FAILED, with the statuses", () => {
    expect(verdictOf(target("a", { satFailed: 100 })).failed).toBe(false);
    const v = verdictOf(target("a", { satFailed: 101 }));
    expect(v.failed).toBe(true);
    expect(v.notes.join(" ")).toContain("403 x101");
    expect(verdictOf(target("a", { rateFailed: 51 })).failed).toBe(true);
  });

  it("a fixed-rate run that completed under 95% of rate x duration is SHORT", () => {
    expect(verdictOf(target("a", { asked: 5_200 })).short).toBe(false);
    const v = verdictOf(target("a", { asked: 6_000 }));
    expect(v.short).toBe(true);
    expect(v.failed).toBe(false);
    expect(v.notes.join(" ")).toContain("5000 of 6000");
  });

  it("the scenario table reads every target against bare and floor, and names what was skipped", () => {
    const md = scenarioMarkdown(
      { scenario: "poc", title: "t", budget: BUDGETS.poc, rate: 100, targets: [target("bare", { cpu: 20 }), target("floor", { cpu: 25 }), target("gateway", { cpu: 40, satFailed: 500 })], skipped: [{ name: "auth-patient", reason: "it names 5 patients" }] },
      "c.svg",
    );
    const row = md.split("\n").find((l) => l.startsWith("| gateway "));
    expect(row).toContain("| 2.00x | 1.60x | +15.0 |");
    expect(row).toContain("FAILED");
    expect(md).toContain("Not run here: auth-patient, because it names 5 patients.");
  });
});

describe("bench tool output", () => {
  it("jit.v: traces per start line, side traces apart, lualib_bundle counted; aborts only in plugin modules", () => {
    const log = [
      "[TRACE   1 lualib_bundle.lua:120 loop]",
      "[TRACE   2 (1/3) lualib_bundle.lua:120 -> 1]",
      "[TRACE   3 (1/4) lualib_bundle.lua:120 -> 1]",
      "[TRACE   4 shdict.lua:807 return]",
      "[TRACE --- access.lua:50 -- NYI: FastFunc coroutine.wrap at access.lua:52]",
      "[TRACE --- var.lua:68 -- NYI: return to lower frame at ffi.string]",
    ].join("\n");
    const r = readTraceLog(log, /\b(access|lualib_bundle)\.lua:\d+/);
    expect(r.traces).toBe(4);
    expect(r.topLines[0]).toEqual({ where: "lualib_bundle.lua:120", traces: 3, side: 2 });
    expect(r.aborts).toEqual(["access.lua:50 -- NYI: FastFunc coroutine.wrap at access.lua:52 (x1)"]);
  });

  it("the plugin pattern always covers lualib_bundle", () => {
    expect(pluginLinePattern([]).test("lualib_bundle.lua:7")).toBe(true);
    expect(pluginLinePattern([]).test("shdict.lua:7")).toBe(false);
  });

  it("jit.p raw counts become shares: VM states, and lines flattened across functions", () => {
    expect(parseVmStates("  300  C code\n  100  Compiled\n")).toEqual([
      { state: "C code", samples: 300, pct: 75 },
      { state: "Compiled", samples: 100, pct: 25 },
    ]);
    const lines = parseFunctionLines(["  600  access.lua:run", "  --   400  access.lua:31", "  --   200  access.lua:40", "  400  str.lua:matches", "  --   400  str.lua:10"].join("\n"));
    expect(lines).toEqual([
      { fn: "access.lua:run", line: "access.lua:31", pct: 40 },
      { fn: "str.lua:matches", line: "str.lua:10", pct: 40 },
      { fn: "access.lua:run", line: "access.lua:40", pct: 20 },
    ]);
  });

  it("perf report --sort dso: rows with their shares, comments skipped", () => {
    const text = "# Overhead  Shared Object\n# ........\n#\n    51.80%  [kernel.kallsyms]\n    22.50%  nginx\n     2.10%  [JIT] tid 22839\n";
    expect(parseDsoReport(text)).toEqual([
      { dso: "[kernel.kallsyms]", pct: 51.8 },
      { dso: "nginx", pct: 22.5 },
      { dso: "[JIT] tid 22839", pct: 2.1 },
    ]);
  });
});
