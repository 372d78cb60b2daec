/**
 * `npm run bench [-- --scenario poc|chart|search|writes|mixed|cache|export|all] [--duration S]
 *                [--connections N] [--no-variants | --variants a,b] [--repeat N] [--no-lua] [--no-write]
 *                [--profile TARGET[,TARGET]]`
 *
 * Same run, same machine: a bare nginx proxy, the floor (the gateway's conf with empty Lua
 * phases), the gateway, and the gateway with each feature left out, all on one static upstream.
 * Throughput at saturation (closed loop), then p50, p99 and max at a fixed arrival rate of 50% of
 * the bare proxy's saturation (open model). Every request carries the token its scenario names
 * for the target (bench/scenarios.ts); a target with more than 1% non-2xx in a phase FAILED, and
 * the run exits 1 once it has written its results. Writes a dated section into bench/RESULTS.md
 * and an SVG chart under bench/charts/. `--profile` profiles the named targets instead
 * (bench/profile.ts) and writes only that.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { PACKAGE_ROOT } from "../compiler/bundle.ts";
import { bootstrap, findRuntime } from "../compiler/runtime.ts";
import { freePort } from "../test/harness/ports.ts";
import { runH2load, type RunResult } from "./h2load.ts";
import { gatewayTraceAborts } from "./lua/gateway-traces.ts";
import { luaMicro } from "./lua/micro.ts";
import { profileTarget } from "./profile.ts";
import {
  against,
  latencySvg,
  MAX_REFUSED,
  prependResults,
  profileMarkdown,
  scenarioMarkdown,
  sectionMarkdown,
  verdictOf,
  type ProfileMeasure,
  type ScenarioMeasure,
  type TargetMeasure,
} from "./report.ts";
import { fallbackPlan } from "./plan.ts";
import { isScenarioId, SCENARIO_IDS, SCENARIOS, tokenFor, type ScenarioId, type TokenSpec } from "./scenarios.ts";
import { checkProxies, FLOOR, freePorts, GATEWAY_VARIANTS, KEEPALIVE_REQUESTS, startBareProxy, startGateway, startRedis, startStaticUpstream, type GatewayVariant, type Target } from "./targets.ts";
import { startAuthz, type Authz } from "../demo/authz.ts";

const BENCH = path.join(PACKAGE_ROOT, "bench");
const OUT = path.join(BENCH, "out");

/** Rounds for `--scenario all` unless --repeat says otherwise; one scenario keeps one (about 80 s). */
const ALL_ROUNDS = 3;

interface Options {
  readonly scenarios: readonly ScenarioId[];
  readonly durationS: number;
  readonly connections: number;
  readonly variants: readonly string[];
  /** Measure every target this many times, interleaved, and report the median run. */
  readonly repeat: number;
  readonly lua: boolean;
  readonly write: boolean;
  /** Targets to profile instead of measuring throughput; empty: no profiling. */
  readonly profile: readonly string[];
}

/** What --profile accepts: every target the rounds measure. */
const PROFILABLE = ["bare", FLOOR.name, ...GATEWAY_VARIANTS.map((g) => g.name)];

function options(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string", default: "poc" },
      duration: { type: "string", default: "5" },
      connections: { type: "string", default: "32" },
      "no-variants": { type: "boolean", default: false },
      variants: { type: "string" },
      repeat: { type: "string" },
      "no-lua": { type: "boolean", default: false },
      "no-write": { type: "boolean", default: false },
      profile: { type: "string" },
    },
  });
  const ids = v.scenario === "all" ? SCENARIO_IDS : v.scenario.split(",");
  for (const id of ids) if (!isScenarioId(id)) throw new Error(`unknown scenario ${id}; one of ${SCENARIO_IDS.join(", ")} or all`);
  const durationS = Number(v.duration);
  const connections = Number(v.connections);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > 120) throw new Error("--duration must be 1-120 seconds");
  if (!Number.isInteger(connections) || connections < 1 || connections > 64) throw new Error("--connections must be 1-64 (loopback, bounded load)");
  const known = GATEWAY_VARIANTS.map((g) => g.name);
  const variants = v["no-variants"] ? ["gateway"] : v.variants === undefined ? known : v.variants.split(",");
  for (const name of variants) if (!known.includes(name)) throw new Error(`unknown variant ${name}; one of ${known.join(", ")}`);
  const repeat = v.repeat === undefined ? (v.scenario === "all" ? ALL_ROUNDS : 1) : Number(v.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 9) throw new Error("--repeat must be 1-9");
  const profile = v.profile === undefined ? [] : v.profile.split(",").filter((p) => p !== "");
  for (const p of profile) if (!PROFILABLE.includes(p)) throw new Error(`unknown --profile target ${p}; one of ${PROFILABLE.join(", ")}`);
  if (v.profile !== undefined && profile.length === 0) throw new Error("--profile needs a target name");
  return { scenarios: ids as ScenarioId[], durationS, connections, variants, repeat, lua: !v["no-lua"], write: !v["no-write"], profile };
}

function machine(o: Options): { date: string; cpu: string; cores: number; nginx: string; driver: string; settings: string } {
  // nginx -v and h2load --version print to stderr.
  const version = execFileSync("sh", ["-c", `"${findRuntime().nginx}" -v 2>&1`], { encoding: "utf8" }).trim().replace(/^nginx version: /, "");
  const h2 = execFileSync("sh", ["-c", "h2load --version 2>&1 | head -1"], { encoding: "utf8" }).trim();
  const settings = o.profile.length > 0
    ? `Profile runs (--profile ${o.profile.join(",")}): each target 1 nginx worker, closed loop ${o.connections} connections x ${o.durationS} s after 1 s of warm-up, once per profiler.`
    : `Each target: 1 nginx worker, keepalive_requests ${KEEPALIVE_REQUESTS}; closed loop ${o.connections} connections x ${o.durationS} s, then open model ${Math.min(16, o.connections)} connections x ${o.durationS} s; 1 s warm-up before each.${o.repeat > 1 ? ` Saturation: ${o.repeat} interleaved rounds per target, the median round by CPU per request.` : ""}`;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpu: cpus()[0]?.model ?? "unknown CPU",
    cores: cpus().length,
    nginx: version,
    driver: `${h2} (--h1, one thread; latency from its monotonic per-request log)`,
    settings,
  };
}

/** Tokens minted once per run, by spec (JWTs from the demo oidc-provider, RS256). */
class Tokens {
  private readonly minted = new Map<string, string>();
  constructor(private readonly authz: Authz) {}

  async mint(spec: TokenSpec): Promise<void> {
    const key = JSON.stringify(spec);
    if (this.minted.has(key)) return;
    // An empty tenant mints a token without the claim, which every tenant trusting the issuer accepts.
    const token = await this.authz.mintToken({ tenant: spec.tenant ?? "", scope: spec.scope, ...(spec.patient !== undefined ? { patient: spec.patient } : {}), expiresIn: 3600 });
    this.minted.set(key, token);
  }

  headers(spec: TokenSpec): Record<string, string> {
    const t = this.minted.get(JSON.stringify(spec));
    if (t === undefined) throw new Error(`token not minted: ${JSON.stringify(spec)}`);
    return { authorization: `Bearer ${t}` };
  }
}

/**
 * Which token a target's requests carry in a scenario, or why the target does not apply. The
 * anonymous targets (bare, floor, pass-through gateway) get the user token too, so every target
 * parses the same request bytes; they ignore it, and the gateway strips it.
 */
function tokenOf(v: GatewayVariant | undefined, id: ScenarioId): { token: TokenSpec } | { skip: string } {
  return tokenFor(id, v?.token ?? "user");
}

interface Measured {
  readonly target: Target;
  readonly variant: GatewayVariant | undefined;
}

async function measure(t: Target, id: ScenarioId, o: Options, round: number, headers: Record<string, string>): Promise<{ saturation: RunResult; cpuUsPerRequest: number }> {
  const p = fallbackPlan(id);
  const base = { port: t.port, ...p, headers: { ...p.headers, ...headers }, connections: o.connections };
  await runH2load({ ...base, durationS: 1, filePrefix: path.join(OUT, `${id}-${t.name}-${round}-warm`) });
  const cpu0 = t.cpuSeconds();
  const saturation = await runH2load({ ...base, durationS: o.durationS, filePrefix: path.join(OUT, `${id}-${t.name}-${round}-sat`) });
  // Worker CPU per request is steadier than throughput on a shared 2-core VM: it does not
  // depend on how the cores were split between load generator, proxy and upstream.
  const cpuUsPerRequest = ((t.cpuSeconds() - cpu0) * 1e6) / saturation.requests;
  return { saturation, cpuUsPerRequest };
}

async function fixedRate(t: Target, id: ScenarioId, o: Options, rate: number, headers: Record<string, string>): Promise<RunResult> {
  const p = fallbackPlan(id);
  return runH2load({ port: t.port, ...p, headers: { ...p.headers, ...headers }, connections: Math.min(16, o.connections), durationS: o.durationS, rate, filePrefix: path.join(OUT, `${id}-${t.name}-rate`) });
}

function summary(t: TargetMeasure, bare: TargetMeasure | undefined, floor: TargetMeasure | undefined): string[] {
  const s = t.saturation;
  const r = t.fixedRate.latencyMs;
  const l = s.littlesLaw;
  const a = against(t, bare, floor);
  const v = verdictOf(t);
  const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
  const head =
    `  ${t.name.padEnd(16)} ${s.rps.toFixed(0).padStart(7)} req/s (${a.tputBare} bare, ${a.tputFloor} floor)  cpu ${t.cpuUsPerRequest.toFixed(1).padStart(5)} us/req (${a.cpuBare} bare, ${a.cpuFloor} floor, ${a.cpuOverFloorUs} us over floor)` +
    `  Little ${l?.ok === true ? "ok" : "BROKEN"} (${l?.ratio.toFixed(2) ?? "-"})  p50 ${r.p50.toFixed(3)}  p99 ${r.p99.toFixed(3)}  max ${r.max.toFixed(2)} ms` +
    `  sent ${v.sent === undefined ? "-" : `${(v.sent * 100).toFixed(1)}%`}  non-2xx ${pct(v.refusedSaturation)} / ${pct(v.refusedFixedRate)}${v.failed ? "  FAILED" : v.short ? "  SHORT" : ""}`;
  return [head, ...v.notes.map((n) => `      ${n}`)];
}

async function startTarget(v: GatewayVariant | undefined, upPort: number, name?: string, workerLua?: GatewayVariant["workerLua"]): Promise<Target> {
  if (v === undefined) return startBareProxy(name === undefined ? OUT : path.join(OUT, name), await freePort(), upPort);
  const [port, admin] = (await freePorts(2)) as [number, number];
  return startGateway(OUT, { ...v, ...(name !== undefined ? { name } : {}), ...(workerLua !== undefined ? { workerLua } : {}) }, port, admin, upPort);
}

const variantNamed = (name: string): GatewayVariant | undefined => (name === FLOOR.name ? FLOOR : GATEWAY_VARIANTS.find((g) => g.name === name));

async function profiles(o: Options, upPort: number, tokens: Tokens): Promise<string[]> {
  const sections: string[] = [];
  for (const id of o.scenarios) {
    for (const name of o.profile) {
      const v = variantNamed(name);
      const tok = tokenOf(v, id);
      if ("skip" in tok) {
        console.log(`\nprofile ${name} (${id}): skipped, because ${tok.skip}`);
        continue;
      }
      console.log(`\nprofile ${name} (${id}), ${o.durationS} s per profiler run`);
      const p = await profileTarget(name, {
        outDir: OUT,
        scenario: id,
        durationS: o.durationS,
        connections: o.connections,
        headers: tokens.headers(tok.token),
        hasLua: v !== undefined,
        start: (run, workerLua) => startTarget(v, upPort, run, workerLua),
      });
      printProfile(p);
      sections.push(profileMarkdown(p));
    }
  }
  return sections;
}

function printProfile(p: ProfileMeasure): void {
  console.log(`  worker cpu ${p.cpuUsPerRequest.toFixed(1)} us/req (${p.requests} requests, perf run)`);
  if (p.vmStates !== undefined) console.log(`  jit.p VM states: ${p.vmStates.map((s) => `${s.state} ${s.pct.toFixed(1)}%`).join(", ")}`);
  if (p.lines !== undefined) {
    console.log("  jit.p hottest lines (% of all samples):");
    for (const l of p.lines) console.log(`    ${l.pct.toFixed(1).padStart(5)}%  ${l.line.padEnd(28)} ${l.fn}`);
  }
  if (p.dsos !== undefined) {
    console.log("  perf, by shared object:");
    for (const d of p.dsos) console.log(`    ${d.pct.toFixed(1).padStart(5)}%  ${d.dso}`);
  }
  for (const n of p.notes) console.log(`  note: ${n}`);
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  bootstrap({ install: true, log: (s) => console.log(s) });
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  mkdirSync(path.join(BENCH, "charts"), { recursive: true });

  const running: Target[] = [];
  let authz: Authz | undefined;
  const stopAll = async (): Promise<void> => {
    for (const t of running.splice(0).reverse()) await t.stop();
    await authz?.close();
    authz = undefined;
  };
  process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
  const failed: string[] = [];
  try {
    authz = await startAuthz({ port: 0 });
    process.env["FHIR_EDGE_BENCH_ISSUER"] = authz.issuer;
    const tokens = new Tokens(authz);
    for (const id of SCENARIO_IDS) {
      for (const kind of ["user", "patient"] as const) {
        const t = tokenFor(id, kind);
        if ("token" in t) await tokens.mint(t.token);
      }
    }
    const upPort = await freePort();
    running.push(await startStaticUpstream(OUT, upPort));
    const wanted = o.profile.length > 0 ? o.profile : o.variants;
    if (wanted.some((n) => GATEWAY_VARIANTS.find((g) => g.name === n)?.env?.["BENCH_LIMITS"] === "redis" || GATEWAY_VARIANTS.find((g) => g.name === n)?.env?.["BENCH_LIMITS"] === "sync")) {
      const redisPort = await freePort();
      running.push(await startRedis(redisPort));
      process.env["FHIR_EDGE_BENCH_REDIS"] = `redis://127.0.0.1:${redisPort}`;
    }

    const sections: string[] = [];
    let lua: Parameters<typeof sectionMarkdown>[2];
    if (o.profile.length > 0) {
      sections.push(...(await profiles(o, upPort, tokens)));
    } else {
      const all: Measured[] = [];
      for (const v of [undefined, FLOOR, ...GATEWAY_VARIANTS.filter((g) => o.variants.includes(g.name))]) {
        const t = await startTarget(v, upPort);
        running.push(t);
        all.push({ target: t, variant: v });
        // The references must proxy, or every ratio against them is wrong.
        if (v === undefined || v.token === undefined) await checkProxies(t, upPort);
      }

      const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "");
      for (const id of o.scenarios) {
        console.log(`\n${id}: ${SCENARIOS[id].title}`);
        const skipped: { name: string; reason: string }[] = [];
        const here: (Measured & { headers: Record<string, string> })[] = [];
        for (const m of all) {
          const tok = tokenOf(m.variant, id);
          if ("skip" in tok) {
            skipped.push({ name: m.target.name, reason: tok.skip });
            console.log(`  ${m.target.name.padEnd(16)} skipped: ${tok.skip}`);
          } else {
            here.push({ ...m, headers: tokens.headers(tok.token) });
          }
        }
        // Rounds interleave the targets, so slow drift of the VM hits them all alike; each
        // target reports its median round by CPU per request.
        const rounds = new Map<Target, { saturation: RunResult; cpuUsPerRequest: number }[]>(here.map((m) => [m.target, []]));
        for (let round = 0; round < o.repeat; round++) {
          for (const m of here) rounds.get(m.target)?.push(await measure(m.target, id, o, round, m.headers));
        }
        const sats = here.map((m) => {
          const byRound = rounds.get(m.target) ?? [];
          const runs = [...byRound].sort((a, b) => a.cpuUsPerRequest - b.cpuUsPerRequest);
          const mid = runs[Math.floor(runs.length / 2)]!;
          if (runs.length > 1) console.log(`  ${m.target.name.padEnd(16)} cpu us/req by round: ${byRound.map((r) => r.cpuUsPerRequest.toFixed(1)).join(", ")}`);
          const failedByStatus: Record<string, number> = {};
          for (const r of byRound) for (const [st, n] of Object.entries(r.saturation.failedByStatus)) failedByStatus[st] = (failedByStatus[st] ?? 0) + n;
          const saturationRounds = { requests: byRound.reduce((a, r) => a + r.saturation.requests, 0), failed: byRound.reduce((a, r) => a + r.saturation.failed, 0), failedByStatus };
          return { m, saturation: mid.saturation, cpuUsPerRequest: mid.cpuUsPerRequest, saturationRounds };
        });
        const bareSat = sats.find((s) => s.m.variant === undefined);
        const rate = bareSat === undefined ? 1000 : bareSat.saturation.rps * 0.5;
        const measured: TargetMeasure[] = [];
        for (const { m, saturation, cpuUsPerRequest, saturationRounds } of sats) {
          measured.push({ name: m.target.name, description: m.target.description, saturation, cpuUsPerRequest, saturationRounds, fixedRate: await fixedRate(m.target, id, o, rate, m.headers) });
        }
        const bare = measured.find((t) => t.name === "bare");
        const floor = measured.find((t) => t.name === FLOOR.name);
        for (const tm of measured) {
          for (const line of summary(tm, bare, floor)) console.log(line);
          if (verdictOf(tm).failed) failed.push(`${id}/${tm.name}`);
        }
        const sm: ScenarioMeasure = { scenario: id, title: SCENARIOS[id].title, budget: SCENARIOS[id].budget, rate, targets: measured, skipped };
        const chart = `charts/${stamp}-${id}.svg`;
        const gw = measured.find((t) => t.name === "gateway");
        if (o.write && bare && gw) {
          writeFileSync(
            path.join(BENCH, chart),
            latencySvg(`${id}: latency at ${Math.round(rate)} req/s (gateway vs floor vs bare proxy)`, [
              { name: "bare proxy", sortedMs: bare.fixedRate.sortedMs, color: "#1f77b4" },
              ...(floor ? [{ name: "floor (empty Lua)", sortedMs: floor.fixedRate.sortedMs, color: "#2ca02c" }] : []),
              { name: "gateway", sortedMs: gw.fixedRate.sortedMs, color: "#d62728" },
            ]),
          );
        }
        sections.push(scenarioMarkdown(sm, chart));
      }
      const gwTraces = o.lua ? await gatewayTraceAborts(OUT, upPort, (id) => tokens.headers(SCENARIOS[id].tokens.user)) : undefined;
      await stopAll();

      lua = o.lua ? { ...luaMicro(), ...(gwTraces !== undefined ? { gateway: gwTraces } : {}) } : undefined;
      if (lua !== undefined) {
        console.log("\nLua hot path (ns/op):");
        for (const r of lua.rows) console.log(`  ${r.name.padEnd(40)} ${r.nsPerOp.toFixed(1)}`);
        console.log(lua.aborts.length === 0 ? "  trace check: no aborts in hot-path modules" : `  trace aborts:\n${lua.aborts.map((a) => `    ${a}`).join("\n")}`);
        if (gwTraces !== undefined) {
          console.log(`gateway workers under load (jit.v): ${gwTraces.traces} traces, ${gwTraces.aborts.length} distinct aborts in plugin modules`);
          for (const a of gwTraces.aborts) console.log(`    ${a}`);
          console.log("  traces per start line (side traces):");
          for (const l of gwTraces.topLines) console.log(`    ${String(l.traces).padStart(4)} (${l.side})  ${l.where}`);
        }
      }
    }
    await stopAll();
    const section = sectionMarkdown(machine(o), sections, lua);
    writeFileSync(path.join(OUT, "section.md"), section);
    if (o.write) {
      prependResults(path.join(BENCH, "RESULTS.md"), section);
      console.log(`\nwrote bench/RESULTS.md (${readFileSync(path.join(BENCH, "RESULTS.md"), "utf8").split("\n").length} lines)`);
    }
  } finally {
    await stopAll();
  }
  if (failed.length > 0) {
    console.error(`\nFAILED (more than ${MAX_REFUSED * 100}% non-2xx in a phase, so they measured refusals): ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

await main();
