/**
 * Results: a dated section at the top of bench/RESULTS.md (earlier runs are kept below, so a
 * regression shows), and an SVG of latency percentile curves, gateway against bare proxy.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { AIMS, type Budget } from "./budgets.ts";
import { percentile, type RunResult } from "./h2load.ts";

export interface TargetMeasure {
  readonly name: string;
  readonly description: string;
  readonly saturation: RunResult;
  /** The target's nginx worker CPU per request during the saturation run, microseconds. */
  readonly cpuUsPerRequest: number;
  readonly fixedRate: RunResult;
  /** Non-2xx over every saturation round, not only the median one. */
  readonly saturationRounds: { readonly requests: number; readonly failed: number; readonly failedByStatus: Readonly<Record<string, number>> };
}

/** More non-2xx than this, in either phase, and the target measured refusals, not its work: FAILED. */
export const MAX_REFUSED = 0.01;
/** A fixed-rate run that completed fewer of the requests it asked for than this is flagged SHORT. */
export const MIN_SENT = 0.95;

export interface TargetVerdict {
  /** Non-2xx share at saturation (all rounds) and at the fixed rate. */
  readonly refusedSaturation: number;
  readonly refusedFixedRate: number;
  /** Requests completed at the fixed rate over rate x duration. */
  readonly sent: number | undefined;
  readonly failed: boolean;
  readonly short: boolean;
  /** Why, in words (status counts), for the console and the report. */
  readonly notes: readonly string[];
}

const statusList = (by: Readonly<Record<string, number>>): string =>
  Object.entries(by)
    .sort((a, b) => b[1] - a[1])
    .map(([st, n]) => `${st} x${n}`)
    .join(", ");

export function verdictOf(t: TargetMeasure): TargetVerdict {
  const sr = t.saturationRounds;
  const refusedSaturation = sr.failed / Math.max(1, sr.requests);
  const refusedFixedRate = t.fixedRate.failed / Math.max(1, t.fixedRate.requests);
  const sent = t.fixedRate.asked === undefined ? undefined : t.fixedRate.requests / t.fixedRate.asked;
  const failed = refusedSaturation > MAX_REFUSED || refusedFixedRate > MAX_REFUSED || sr.requests === 0;
  const short = sent !== undefined && sent < MIN_SENT;
  const notes: string[] = [];
  if (sr.failed > 0) notes.push(`saturation non-2xx ${f(refusedSaturation * 100, 2)}% (${statusList(sr.failedByStatus)})`);
  if (t.fixedRate.failed > 0) notes.push(`fixed-rate non-2xx ${f(refusedFixedRate * 100, 2)}% (${statusList(t.fixedRate.failedByStatus)})`);
  if (short) notes.push(`fixed rate sent ${t.fixedRate.requests} of ${f(t.fixedRate.asked ?? 0, 0)} asked (${f((sent ?? 0) * 100, 1)}%): its latencies cover less load than the rate says`);
  return { refusedSaturation, refusedFixedRate, sent, failed, short, notes };
}

export interface ScenarioMeasure {
  readonly scenario: string;
  readonly title: string;
  readonly budget: Budget;
  readonly rate: number;
  readonly targets: readonly TargetMeasure[];
  /** Variants that cannot apply to this scenario, and why. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

export interface Machine {
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly nginx: string;
  readonly driver: string;
  readonly settings: string;
}

const f = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "-");
const ratio = (a: number, b: number): string => (b > 0 ? `${f(a / b, 2)}x` : "-");
const signed = (n: number, digits = 1): string => (Number.isFinite(n) ? `${n >= 0 ? "+" : ""}${n.toFixed(digits)}` : "-");

/** The figures every gateway target is read by: against the bare proxy and against the floor. */
export function against(t: TargetMeasure, bare: TargetMeasure | undefined, floor: TargetMeasure | undefined): { tputBare: string; tputFloor: string; cpuBare: string; cpuFloor: string; cpuOverFloorUs: string } {
  return {
    tputBare: bare ? ratio(t.saturation.rps, bare.saturation.rps) : "-",
    tputFloor: floor ? ratio(t.saturation.rps, floor.saturation.rps) : "-",
    cpuBare: bare ? ratio(t.cpuUsPerRequest, bare.cpuUsPerRequest) : "-",
    cpuFloor: floor ? ratio(t.cpuUsPerRequest, floor.cpuUsPerRequest) : "-",
    cpuOverFloorUs: floor ? signed(t.cpuUsPerRequest - floor.cpuUsPerRequest) : "-",
  };
}

const PCTS = [50, 75, 90, 95, 99, 99.5, 99.9, 100] as const;

/** Percentile curves on a log-scaled latency axis; x is the percentile rank. */
export function latencySvg(title: string, series: readonly { name: string; sortedMs: Float64Array; color: string }[]): string {
  const W = 720;
  const H = 360;
  const m = { l: 70, r: 160, t: 40, b: 50 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const values = series.flatMap((s) => PCTS.map((p) => percentile(s.sortedMs, p))).filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values))));
  const y = (v: number): number => m.t + ph - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph;
  const x = (i: number): number => m.l + (i / (PCTS.length - 1)) * pw;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14">${title}</text>`,
  ];
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    const v = Math.pow(10, e);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`, `<text x="${m.l - 8}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v.toFixed(0) : v.toString()} ms</text>`);
  }
  PCTS.forEach((p, i) => parts.push(`<text x="${x(i)}" y="${m.t + ph + 20}" text-anchor="middle">${p === 100 ? "max" : `p${p}`}</text>`));
  series.forEach((s, k) => {
    const pts = PCTS.map((p, i) => `${x(i).toFixed(1)},${y(percentile(s.sortedMs, p)).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<rect x="${m.l + pw + 20}" y="${m.t + k * 20}" width="12" height="3" fill="${s.color}"/>`, `<text x="${m.l + pw + 38}" y="${m.t + k * 20 + 5}">${s.name}</text>`);
  });
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">percentile at fixed arrival rate (50% of bare saturation)</text>`, "</svg>");
  return parts.join("\n");
}

function verdicts(bare: TargetMeasure, gw: TargetMeasure): string[] {
  const tput = gw.saturation.rps / bare.saturation.rps;
  const dp99 = gw.fixedRate.latencyMs.p99 - bare.fixedRate.latencyMs.p99;
  const spike = gw.fixedRate.latencyMs.max / Math.max(gw.fixedRate.latencyMs.p99, 1e-9);
  const mark = (ok: boolean): string => (ok ? "met" : "NOT met");
  return [
    `- throughput ${f(tput * 100, 1)}% of bare (aim >= ${AIMS.minThroughputRatio * 100}%): ${mark(tput >= AIMS.minThroughputRatio)}`,
    `- p99 at 50% load ${dp99 >= 0 ? "+" : ""}${f(dp99, 3)} ms over bare (aim <= +${AIMS.maxP99DeltaMs} ms): ${mark(dp99 <= AIMS.maxP99DeltaMs)}`,
    `- max ${f(gw.fixedRate.latencyMs.max, 2)} ms = ${f(spike, 1)}x its p99 (a spike is > ${AIMS.maxOverP99}x): ${mark(spike <= AIMS.maxOverP99)}`,
  ];
}

export function scenarioMarkdown(s: ScenarioMeasure, chartFile: string): string {
  const bare = s.targets.find((t) => t.name === "bare");
  const lines: string[] = [
    `#### ${s.scenario}: ${s.title}`,
    "",
    `Fixed arrival rate: ${f(s.rate, 0)} req/s (50% of the bare proxy's saturation). Budget at that rate: p50 < ${s.budget.p50Ms} ms, p99 < ${s.budget.p99Ms} ms, max < ${s.budget.maxMs} ms.`,
    "",
    "| target | sat. req/s | vs bare | vs floor | worker CPU µs/req | vs bare | vs floor | over floor µs | Little's law | p50 ms | p99 ms | p99.9 ms | max ms | p99 vs bare | budget | sent at rate | non-2xx sat. / rate | verdict |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
  ];
  const floor = s.targets.find((t) => t.name === "floor");
  const notes: string[] = [];
  for (const t of s.targets) {
    const l = t.saturation.littlesLaw;
    const fr = t.fixedRate.latencyMs;
    const inBudget = fr.p50 < s.budget.p50Ms && fr.p99 < s.budget.p99Ms && fr.max < s.budget.maxMs;
    const a = against(t, bare, floor);
    const v = verdictOf(t);
    const mark = v.failed ? "FAILED" : v.short ? "SHORT" : "ok";
    for (const n of v.notes) notes.push(`- ${t.name}: ${n}`);
    lines.push(
      `| ${t.description} | ${f(t.saturation.rps, 0)} | ${a.tputBare} | ${a.tputFloor} | ${f(t.cpuUsPerRequest, 1)} | ${a.cpuBare} | ${a.cpuFloor} | ${a.cpuOverFloorUs} | ${l ? `${l.ok ? "ok" : "BROKEN"} (${f(l.ratio, 2)})` : "-"} | ${f(fr.p50, 3)} | ${f(fr.p99, 3)} | ${f(fr.p999, 3)} | ${f(fr.max, 2)} | ${bare ? ratio(fr.p99, bare.fixedRate.latencyMs.p99) : "-"} | ${inBudget ? "within" : "OVER"} | ${v.sent === undefined ? "-" : `${f(v.sent * 100, 1)}%`} | ${f(v.refusedSaturation * 100, 2)}% / ${f(v.refusedFixedRate * 100, 2)}% | ${mark} |`,
    );
  }
  if (notes.length > 0) lines.push("", `FAILED: more than ${MAX_REFUSED * 100}% non-2xx in a phase (the target measured refusals, not its work). SHORT: the fixed-rate run completed under ${MIN_SENT * 100}% of what it asked for.`, "", ...notes);
  if (s.skipped.length > 0) lines.push("", ...s.skipped.map((k) => `Not run here: ${k.name}, because ${k.reason}.`));
  const gw = s.targets.find((t) => t.name === "gateway");
  if (bare && gw) lines.push("", "Against the aims for the full policy chain:", ...verdicts(bare, gw));
  lines.push("", `![latency percentiles, ${s.scenario}](${chartFile})`, "");
  return lines.join("\n");
}

export interface LuaMicro {
  readonly rows: readonly { name: string; nsPerOp: number }[];
  readonly aborts: readonly string[];
  /** jit.v inside the gateway's own workers under load, the check that decides. */
  readonly gateway?: { readonly traces: number; readonly aborts: readonly string[]; readonly topLines: readonly { readonly where: string; readonly traces: number; readonly side: number }[] };
}

export function sectionMarkdown(m: Machine, scenarios: readonly string[], lua: LuaMicro | undefined): string {
  const head = [
    `## ${m.date}`,
    "",
    `Machine: ${m.cores} cores, ${m.cpu}; ${m.nginx}. Driver: ${m.driver}. ${m.settings}`,
    "",
    "Columns: saturation is a closed loop; worker CPU is the target's own nginx worker (user + system, from /proc) per request in that run, excluding the upstream and the load generator; \"vs bare\" and \"vs floor\" divide by the bare proxy's and the floor's figures (the floor is the gateway's conf with empty Lua phases, so \"over floor\" is what the gateway's Lua costs per request); Little's law compares its mean latency with connections / throughput (BROKEN means more than 25% off, and the run's latencies are not to be trusted). Latency columns are from the open-model run at a fixed arrival rate; \"sent at rate\" is the requests it completed over rate x duration.",
    "",
  ];
  const luaPart = lua === undefined
    ? []
    : [
        "### Lua hot path (plain LuaJIT, compiled plugins)",
        "",
        "| operation | ns/op |",
        "|---|---:|",
        ...lua.rows.map((r) => `| ${r.name} | ${f(r.nsPerOp, 1)} |`),
        "",
        lua.aborts.length === 0 ? "Microbenchmark trace check (`-jv`): no trace aborts in the hot-path modules." : `Microbenchmark trace check (\`-jv\`; its own outer loops make some of these), aborts in hot-path modules:\n\n${lua.aborts.map((a) => `- \`${a}\``).join("\n")}`,
        "",
        ...(lua.gateway === undefined
          ? []
          : [
              `Gateway workers under load (jit.v in init_worker, poc + mixed + cache): ${lua.gateway.traces} traces; ${lua.gateway.aborts.length === 0 ? "no aborts in plugin modules." : "aborts in plugin modules:"}`,
              "",
              ...lua.gateway.aborts.map((a) => `- \`${a}\``),
              "",
              "Traces per source line where they start (root and side traces, every module, lualib_bundle included; a side-trace chain shows up as one line with many):",
              "",
              "| line | traces | of which side traces |",
              "|---|---:|---:|",
              ...lua.gateway.topLines.map((l) => `| \`${l.where}\` | ${l.traces} | ${l.side} |`),
              "",
            ]),
      ];
  return [...head, ...scenarios, ...luaPart].join("\n");
}

/** Puts the new section first and keeps every earlier one. */
export function prependResults(file: string, section: string): void {
  const title = "# Benchmark results\n\nNewest first. Each section is one `npm run bench` on the machine it names; ratios compare targets measured in that same run.\n\n";
  const old = existsSync(file) ? readFileSync(file, "utf8").replace(/^# Benchmark results\n\n[^\n]*\n\n/, "") : "";
  writeFileSync(file, `${title}${section}\n${old}`);
}

/** What bench/profile.ts collects for one target (rendered here, like every other table). */
export interface ProfileMeasure {
  readonly target: string;
  readonly scenario: string;
  readonly durationS: number;
  readonly requests: number;
  readonly cpuUsPerRequest: number;
  /** jit.p VM states (N compiled, I interpreted, C C code, G GC, J JIT compiler), % of samples. */
  readonly vmStates?: readonly { readonly state: string; readonly pct: number; readonly samples: number }[];
  /** jit.p function and line: the hottest lines, % of all samples. */
  readonly lines?: readonly { readonly fn: string; readonly line: string; readonly pct: number }[];
  /** perf record of the worker: % of samples per shared object. */
  readonly dsos?: readonly { readonly dso: string; readonly pct: number }[];
  /** Why a part is missing (no Lua in the target, perf not usable here...). */
  readonly notes: readonly string[];
}

export function profileMarkdown(p: ProfileMeasure): string {
  const lines: string[] = [
    `#### Profile: ${p.target} (${p.scenario})`,
    "",
    `Closed loop for ${p.durationS} s per profiler run, each in its own nginx; not a throughput figure (profiling perturbs it). Worker CPU in the perf run: ${f(p.cpuUsPerRequest, 1)} µs/req over ${p.requests} requests.`,
    "",
  ];
  if (p.vmStates !== undefined) {
    lines.push("LuaJIT VM states (`jit.p` mode `v`, share of samples in the worker):", "", "| state | % | samples |", "|---|---:|---:|", ...p.vmStates.map((s) => `| ${s.state} | ${f(s.pct, 1)} | ${s.samples} |`), "");
  }
  if (p.lines !== undefined) {
    lines.push("Hottest lines (`jit.p` mode `Fl`, share of all samples):", "", "| function | line | % |", "|---|---|---:|", ...p.lines.map((l) => `| \`${l.fn}\` | \`${l.line}\` | ${f(l.pct, 1)} |`), "");
  }
  if (p.dsos !== undefined) {
    lines.push("Where the worker's CPU goes (`perf record`, `perf report --sort dso`):", "", "| shared object | % |", "|---|---:|", ...p.dsos.map((d) => `| ${d.dso} | ${f(d.pct, 1)} |`), "");
  }
  for (const n of p.notes) lines.push(`- ${n}`);
  if (p.notes.length > 0) lines.push("");
  return lines.join("\n");
}
