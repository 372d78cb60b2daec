/**
 * `npm run bench [-- --scenario poc|chart|search|writes|mixed|cache|export|all] [--duration S]
 *                [--connections N] [--no-variants | --variants a,b] [--repeat N] [--no-lua] [--no-write]`
 *
 * Same run, same machine: a bare nginx proxy, the gateway, and the gateway with each feature
 * left out, all on one static upstream. Throughput at saturation (closed loop), then p50, p99
 * and max at a fixed arrival rate of 50% of the bare proxy's saturation (open model). Writes a
 * dated section into bench/RESULTS.md and an SVG chart under bench/charts/.
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
import { latencySvg, prependResults, scenarioMarkdown, sectionMarkdown, type ScenarioMeasure, type TargetMeasure } from "./report.ts";
import { fallbackPlan } from "./plan.ts";
import { isScenarioId, SCENARIO_IDS, SCENARIOS, type ScenarioId } from "./scenarios.ts";
import { GATEWAY_VARIANTS, startBareProxy, startGateway, startStaticUpstream, type Target } from "./targets.ts";
import { startAuthz, type Authz } from "../demo/authz.ts";

const BENCH = path.join(PACKAGE_ROOT, "bench");
const OUT = path.join(BENCH, "out");

interface Options {
  readonly scenarios: readonly ScenarioId[];
  readonly durationS: number;
  readonly connections: number;
  readonly variants: readonly string[];
  /** Measure every target this many times, interleaved, and report the median run. */
  readonly repeat: number;
  readonly lua: boolean;
  readonly write: boolean;
}

function options(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string", default: "poc" },
      duration: { type: "string", default: "5" },
      connections: { type: "string", default: "32" },
      "no-variants": { type: "boolean", default: false },
      variants: { type: "string" },
      repeat: { type: "string", default: "1" },
      "no-lua": { type: "boolean", default: false },
      "no-write": { type: "boolean", default: false },
    },
  });
  const ids = v.scenario === "all" ? SCENARIO_IDS : v.scenario.split(",");
  for (const id of ids) if (!isScenarioId(id)) throw new Error(`unknown scenario ${id}; one of ${SCENARIO_IDS.join(", ")} or all`);
  const durationS = Number(v.duration);
  const connections = Number(v.connections);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > 120) throw new Error("--duration must be 1-120 seconds");
  if (!Number.isInteger(connections) || connections < 1 || connections > 64) throw new Error("--connections must be 1-64 (loopback, bounded load)");
  const known = GATEWAY_VARIANTS.map((g) => g.name);
  const byDefault = GATEWAY_VARIANTS.filter((g) => g.optIn !== true).map((g) => g.name);
  const variants = v["no-variants"] ? ["gateway"] : v.variants === undefined ? byDefault : v.variants.split(",");
  for (const name of variants) if (!known.includes(name)) throw new Error(`unknown variant ${name}; one of ${known.join(", ")}`);
  const repeat = Number(v.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 9) throw new Error("--repeat must be 1-9");
  return { scenarios: ids as ScenarioId[], durationS, connections, variants, repeat, lua: !v["no-lua"], write: !v["no-write"] };
}

function machine(o: Options): { date: string; cpu: string; cores: number; nginx: string; driver: string; settings: string } {
  // nginx -v and h2load --version print to stderr.
  const version = execFileSync("sh", ["-c", `"${findRuntime().nginx}" -v 2>&1`], { encoding: "utf8" }).trim().replace(/^nginx version: /, "");
  const h2 = execFileSync("sh", ["-c", "h2load --version 2>&1 | head -1"], { encoding: "utf8" }).trim();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpu: cpus()[0]?.model ?? "unknown CPU",
    cores: cpus().length,
    nginx: version,
    driver: `${h2} (--h1, one thread; latency from its monotonic per-request log)`,
    settings: `Each target: 1 nginx worker; closed loop ${o.connections} connections x ${o.durationS} s, then open model ${Math.min(16, o.connections)} connections x ${o.durationS} s; 1 s warm-up before each.${o.repeat > 1 ? ` Saturation: ${o.repeat} interleaved rounds per target, the median round by CPU per request.` : ""}`,
  };
}

/**
 * Every target gets the same request bytes, token included: the bare proxy and the
 * pass-through gateway ignore it (the gateway strips it), auth-cached validates it once and
 * then serves it from the token cache, which is the cost this measures.
 */
let tokenHeaders: Readonly<Record<string, string>> = {};
/** The patient token, for variants that ask for it (auth-patient, with the chart scenario). */
let patientTokenHeaders: Readonly<Record<string, string>> = {};

function plan(id: ScenarioId, target?: string): ReturnType<typeof fallbackPlan> {
  const p = fallbackPlan(id);
  const patient = GATEWAY_VARIANTS.find((v) => v.name === target)?.token === "patient";
  return { ...p, headers: { ...p.headers, ...(patient ? patientTokenHeaders : tokenHeaders) } };
}

async function measure(t: Target, id: ScenarioId, o: Options, round: number): Promise<{ saturation: RunResult; cpuUsPerRequest: number }> {
  const base = { port: t.port, ...plan(id, t.name), connections: o.connections };
  await runH2load({ ...base, durationS: 1, filePrefix: path.join(OUT, `${id}-${t.name}-${round}-warm`) });
  const cpu0 = t.cpuSeconds();
  const saturation = await runH2load({ ...base, durationS: o.durationS, filePrefix: path.join(OUT, `${id}-${t.name}-${round}-sat`) });
  // Worker CPU per request is steadier than throughput on a shared 2-core VM: it does not
  // depend on how the cores were split between load generator, proxy and upstream.
  const cpuUsPerRequest = ((t.cpuSeconds() - cpu0) * 1e6) / saturation.requests;
  return { saturation, cpuUsPerRequest };
}

async function fixedRate(t: Target, id: ScenarioId, o: Options, rate: number): Promise<RunResult> {
  return runH2load({ port: t.port, ...plan(id, t.name), connections: Math.min(16, o.connections), durationS: o.durationS, rate, filePrefix: path.join(OUT, `${id}-${t.name}-rate`) });
}

function summary(t: TargetMeasure): string {
  const s = t.saturation;
  const r = t.fixedRate.latencyMs;
  const l = s.littlesLaw;
  return `  ${t.name.padEnd(18)} ${s.rps.toFixed(0).padStart(7)} req/s  cpu ${t.cpuUsPerRequest.toFixed(1)} us/req  Little ${l?.ok === true ? "ok" : "BROKEN"} (${l?.ratio.toFixed(2) ?? "-"})  p50 ${r.p50.toFixed(3)}  p99 ${r.p99.toFixed(3)}  max ${r.max.toFixed(2)} ms  non-2xx ${s.failed + t.fixedRate.failed}`;
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
  try {
    authz = await startAuthz({ port: 0 });
    process.env["FHIR_EDGE_BENCH_ISSUER"] = authz.issuer;
    // No tenant claim: one token serves every scenario's tenant (each accepts the issuer).
    // user/*.rs: scopes are checked, with no compartment (the poc charts span many patients).
    const token = await authz.mintToken({ tenant: "", scope: "user/*.rs", expiresIn: 3600 });
    tokenHeaders = { authorization: `Bearer ${token}` };
    const patientToken = await authz.mintToken({ tenant: "", scope: "patient/*.rs launch/patient", patient: "acme-p1", expiresIn: 3600 });
    patientTokenHeaders = { authorization: `Bearer ${patientToken}` };
    const upPort = await freePort();
    running.push(await startStaticUpstream(OUT, upPort));
    const targets: Target[] = [await startBareProxy(OUT, await freePort(), upPort)];
    running.push(targets[0] as Target);
    for (const v of GATEWAY_VARIANTS.filter((g) => o.variants.includes(g.name))) {
      const t = await startGateway(OUT, v, await freePort(), await freePort(), upPort);
      running.push(t);
      targets.push(t);
    }

    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "");
    const sections: string[] = [];
    for (const id of o.scenarios) {
      console.log(`\n${id}: ${SCENARIOS[id].title}`);
      // Rounds interleave the targets, so slow drift of the VM hits them all alike; each
      // target reports its median round by CPU per request.
      const rounds = new Map<Target, { saturation: RunResult; cpuUsPerRequest: number }[]>(targets.map((t) => [t, []]));
      for (let round = 0; round < o.repeat; round++) {
        for (const t of targets) rounds.get(t)?.push(await measure(t, id, o, round));
      }
      const sats = targets.map((t) => {
        const runs = [...(rounds.get(t) ?? [])].sort((a, b) => a.cpuUsPerRequest - b.cpuUsPerRequest);
        const mid = runs[Math.floor(runs.length / 2)]!;
        if (runs.length > 1) console.log(`  ${t.name.padEnd(18)} cpu us/req by round: ${(rounds.get(t) ?? []).map((r) => r.cpuUsPerRequest.toFixed(1)).join(", ")}`);
        return { t, saturation: mid.saturation, cpuUsPerRequest: mid.cpuUsPerRequest };
      });
      const rate: number | undefined = sats[0] === undefined ? undefined : sats[0].saturation.rps * 0.5;
      const measured: TargetMeasure[] = [];
      for (const { t, saturation, cpuUsPerRequest } of sats) {
        const tm = { name: t.name, description: t.description, saturation, cpuUsPerRequest, fixedRate: await fixedRate(t, id, o, rate ?? 1000) };
        measured.push(tm);
        console.log(summary(tm));
      }
      const sm: ScenarioMeasure = { scenario: id, title: SCENARIOS[id].title, budget: SCENARIOS[id].budget, rate: rate ?? 0, targets: measured };
      const chart = `charts/${stamp}-${id}.svg`;
      const bare = measured.find((t) => t.name === "bare");
      const gw = measured.find((t) => t.name === "gateway");
      if (o.write && bare && gw) {
        writeFileSync(
          path.join(BENCH, chart),
          latencySvg(`${id}: latency at ${Math.round(rate ?? 0)} req/s (gateway vs bare proxy)`, [
            { name: "bare proxy", sortedMs: bare.fixedRate.sortedMs, color: "#1f77b4" },
            { name: "gateway", sortedMs: gw.fixedRate.sortedMs, color: "#d62728" },
          ]),
        );
      }
      sections.push(scenarioMarkdown(sm, chart));
    }
    const gwTraces = o.lua ? await gatewayTraceAborts(OUT, upPort, tokenHeaders) : undefined;
    await stopAll();

    const lua = o.lua ? { ...luaMicro(), ...(gwTraces !== undefined ? { gateway: gwTraces } : {}) } : undefined;
    if (lua !== undefined) {
      console.log("\nLua hot path (ns/op):");
      for (const r of lua.rows) console.log(`  ${r.name.padEnd(40)} ${r.nsPerOp.toFixed(1)}`);
      console.log(lua.aborts.length === 0 ? "  trace check: no aborts in hot-path modules" : `  trace aborts:\n${lua.aborts.map((a) => `    ${a}`).join("\n")}`);
      if (gwTraces !== undefined) {
        console.log(`gateway workers under load (jit.v): ${gwTraces.traces} traces, ${gwTraces.aborts.length} distinct aborts in plugin modules`);
        for (const a of gwTraces.aborts) console.log(`    ${a}`);
      }
    }
    const section = sectionMarkdown(machine(o), sections, lua);
    writeFileSync(path.join(OUT, "section.md"), section);
    if (o.write) {
      prependResults(path.join(BENCH, "RESULTS.md"), section);
      console.log(`\nwrote bench/RESULTS.md (${readFileSync(path.join(BENCH, "RESULTS.md"), "utf8").split("\n").length} lines)`);
    }
  } finally {
    await stopAll();
  }
}

await main();
