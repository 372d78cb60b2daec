/**
 * `--profile TARGET[,TARGET]`: where a target's worker spends its time, under the scenario's
 * closed-loop load. Not part of the throughput rounds, since profiling perturbs them. For each
 * target, three runs, each in its own nginx (jit.p holds one profile at a time):
 * - jit.p in VM-state mode (`v`): compiled, interpreted, C code, GC, JIT compiler;
 * - jit.p by function and line (`Fl`): the hottest Lua lines;
 * - where perf works, `perf record` on the worker and its samples per shared object (kernel,
 *   nginx, libluajit, libc, libcrypto...), which also sees what Lua does not (nginx, syscalls).
 * jit.p starts from a timer after the warm-up, and stops in exit_worker_by_lua (SIGQUIT), which
 * writes its file before the worker exits.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { runH2load } from "./h2load.ts";
import { jitShareDir, workerWritable } from "./lua/gateway-traces.ts";
import { fallbackPlan } from "./plan.ts";
import type { ProfileMeasure } from "./report.ts";
import type { ScenarioId } from "./scenarios.ts";
import type { GatewayVariant, Target } from "./targets.ts";

export interface ProfileRun {
  readonly outDir: string;
  readonly scenario: ScenarioId;
  readonly durationS: number;
  readonly connections: number;
  /** The requests' token, as in the throughput rounds. */
  readonly headers: Readonly<Record<string, string>>;
  /** Starts the target, with the profiler's worker hooks when it has Lua (`undefined`: bare). */
  readonly start: (name: string, workerLua: GatewayVariant["workerLua"]) => Promise<Target>;
  /** False for the bare proxy: no Lua, so perf only. */
  readonly hasLua: boolean;
}

const WARM_S = 1;

async function load(t: Target, r: ProfileRun, tag: string, durationS: number): Promise<number> {
  const plan = fallbackPlan(r.scenario);
  const res = await runH2load({ port: t.port, ...plan, headers: { ...plan.headers, ...r.headers }, connections: r.connections, durationS, filePrefix: path.join(r.outDir, `profile-${tag}`) });
  return res.requests;
}

/** One jit.p run; its report file, or undefined (with why in `notes`). */
async function jitProfile(r: ProfileRun, name: string, mode: string, key: string, notes: string[]): Promise<string | undefined> {
  const jitDir = jitShareDir();
  if (jitDir === undefined || !existsSync(path.join(jitDir, "jit", "p.lua"))) {
    notes.push("jit.p: no LuaJIT share dir with jit/p.lua found");
    return undefined;
  }
  const file = workerWritable(path.join(r.outDir, `profile-${name}-${key}.txt`));
  // After the warm-up, so the JIT's first compiles and the token's first validation stay out.
  const start = `ngx.timer.at(${WARM_S}, function() require("jit.p").start(${JSON.stringify(mode)}, ${JSON.stringify(file)}) end)`;
  const t = await r.start(`profile-${name}-${key}`, { luaPath: [`${jitDir}/?.lua`], init: start, exit: 'require("jit.p").stop()' });
  try {
    await load(t, r, `${name}-${key}-warm`, WARM_S);
    await load(t, r, `${name}-${key}`, r.durationS);
  } finally {
    // SIGQUIT; stop() returns once the master (so every worker) has exited.
    await t.stop();
  }
  const text = readFileSync(file, "utf8");
  if (text.trim() === "") {
    notes.push(`jit.p ${mode}: the worker wrote no profile (see ${path.join(r.outDir, `gw-profile-${name}-${key}`, "logs", "error.log")})`);
    return undefined;
  }
  return text;
}

/** jit.p VM-state mode with raw counts (`vm0r`): `  641  Compiled` rows, as shares of all samples. */
export function parseVmStates(text: string): { state: string; pct: number; samples: number }[] {
  const rows: { state: string; samples: number }[] = [];
  for (const l of text.split("\n")) {
    const m = /^\s*(\d+)\s+(.+?)\s*$/.exec(l);
    if (m !== null) rows.push({ state: m[2] ?? "", samples: Number(m[1]) });
  }
  const total = rows.reduce((a, r) => a + r.samples, 0);
  return rows.map((r) => ({ ...r, pct: (100 * r.samples) / Math.max(1, total) }));
}

/**
 * jit.p by function and line with raw counts (`Flm0r`): a function's samples, then its lines'
 * (`  --   120  access.lua:31`). Flattened: each line's share of all samples, hottest first.
 */
export function parseFunctionLines(text: string, top = 25): { fn: string; line: string; pct: number }[] {
  const out: { fn: string; line: string; samples: number }[] = [];
  let fn = "";
  let total = 0;
  for (const l of text.split("\n")) {
    const sub = /^\s+--\s+(\d+)\s+(.+?)\s*$/.exec(l);
    if (sub !== null) {
      out.push({ fn, line: sub[2] ?? "", samples: Number(sub[1]) });
      continue;
    }
    const m = /^\s*(\d+)\s+(.+?)\s*$/.exec(l);
    if (m !== null) {
      fn = m[2] ?? "";
      total += Number(m[1]);
    }
  }
  return out
    .map((l) => ({ fn: l.fn, line: l.line, pct: (100 * l.samples) / Math.max(1, total) }))
    // A line under 0.1% of all samples says nothing at these sample counts.
    .filter((l) => l.pct >= 0.1)
    .sort((a, b) => b.pct - a.pct)
    .slice(0, top);
}

/** Whether `perf record` can sample here (a VM may lack the counters; cpu-clock is software). */
export function perfUsable(outDir: string): { ok: true } | { ok: false; why: string } {
  const probe = path.join(outDir, "perf-probe.data");
  const r = spawnSync("perf", ["record", "-q", "-e", "cpu-clock", "-o", probe, "--", "true"], { encoding: "utf8" });
  rmSync(probe, { force: true });
  if (r.error !== undefined) return { ok: false, why: `perf is not installed (${r.error.message}); on Debian: apt-get install linux-perf` };
  if (r.status !== 0) return { ok: false, why: `perf record fails here: ${(r.stderr ?? "").trim().split("\n")[0] ?? ""}` };
  return { ok: true };
}

/** `perf report --sort dso --stdio`: `  61.20%  nginx` rows. */
export function parseDsoReport(text: string, top = 12): { dso: string; pct: number }[] {
  const out: { dso: string; pct: number }[] = [];
  for (const l of text.split("\n")) {
    if (l.startsWith("#")) continue;
    const m = /^\s*([\d.]+)%\s+(.+?)\s*$/.exec(l);
    if (m !== null) out.push({ dso: m[2] ?? "", pct: Number(m[1]) });
  }
  return out.slice(0, top);
}

async function perfProfile(r: ProfileRun, name: string, notes: string[]): Promise<{ dsos?: { dso: string; pct: number }[]; requests: number; cpuUsPerRequest: number }> {
  const usable = perfUsable(r.outDir);
  const t = await r.start(`profile-${name}-perf`, undefined);
  try {
    await load(t, r, `${name}-perf-warm`, WARM_S);
    const data = path.join(r.outDir, `profile-${name}.perf.data`);
    const cpu0 = t.cpuSeconds();
    let perf: ReturnType<typeof spawn> | undefined;
    let perfDone: Promise<number | null> | undefined;
    if (usable.ok) {
      // -p with a command: perf samples the worker until `sleep` ends, i.e. the load's duration.
      perf = spawn("perf", ["record", "-q", "-e", "cpu-clock", "-F", "999", "-p", t.workerPids().join(","), "-o", data, "--", "sleep", String(r.durationS)], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      perf.stderr?.on("data", (c: Buffer) => (err += c.toString()));
      perfDone = new Promise((resolve) => perf?.once("close", (code) => {
        if (code !== 0) notes.push(`perf record exited ${String(code)}: ${err.trim().split("\n")[0] ?? ""}`);
        resolve(code);
      }));
    } else {
      notes.push(usable.why);
    }
    const requests = await load(t, r, `${name}-perf`, r.durationS);
    const cpuUsPerRequest = ((t.cpuSeconds() - cpu0) * 1e6) / Math.max(1, requests);
    const code = perfDone === undefined ? undefined : await perfDone;
    if (code !== 0 || !existsSync(data)) return { requests, cpuUsPerRequest };
    const rep = spawnSync("perf", ["report", "-i", data, "--sort", "dso", "--stdio"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (rep.status !== 0) {
      notes.push(`perf report failed: ${(rep.stderr ?? "").trim().split("\n")[0] ?? ""}`);
      return { requests, cpuUsPerRequest };
    }
    return { dsos: parseDsoReport(rep.stdout), requests, cpuUsPerRequest };
  } finally {
    await t.stop();
  }
}

export async function profileTarget(name: string, r: ProfileRun): Promise<ProfileMeasure> {
  const notes: string[] = [];
  let vm: string | undefined;
  let fl: string | undefined;
  if (r.hasLua) {
    // Raw sample counts (r), nothing hidden (m0), a sample a millisecond (i1, not 10; the
    // kernel's profiling timer rounds it up to its tick, 4 ms at HZ=250): shares computed here.
    vm = await jitProfile(r, name, "vm0ri1", "vm", notes);
    fl = await jitProfile(r, name, "Flm0ri1", "lines", notes);
  } else {
    notes.push("no Lua in this target: perf only");
  }
  const p = await perfProfile(r, name, notes);
  if (vm !== undefined || fl !== undefined) {
    notes.push(
      "jit.p samples the whole worker on a timer but takes each sample at the next Lua instruction: time nginx spends outside Lua counts as `C code`, and its lines land on the next Lua entry, the `*_by_lua(nginx.conf:N)` chunk lines. The plugin lines are the Lua's own share.",
    );
  }
  if (p.dsos?.some((d) => d.dso.startsWith("[JIT]")) === true) notes.push("perf's `[JIT] tid N` is LuaJIT's compiled traces (machine code in no file).");
  if (p.dsos?.some((d) => d.dso === "[kernel.kallsyms]") === true) notes.push("perf's `[kernel.kallsyms]` is the kernel on the worker's behalf: sockets (loopback TCP both ways), epoll, syscalls.");
  return {
    target: name,
    scenario: r.scenario,
    durationS: r.durationS,
    requests: p.requests,
    cpuUsPerRequest: p.cpuUsPerRequest,
    ...(vm !== undefined ? { vmStates: parseVmStates(vm) } : {}),
    ...(fl !== undefined ? { lines: parseFunctionLines(fl) } : {}),
    ...(p.dsos !== undefined ? { dsos: p.dsos } : {}),
    notes,
  };
}
