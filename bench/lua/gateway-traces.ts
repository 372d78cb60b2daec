/**
 * The trace check that matters most: LuaJIT's own account (jit.v) of the gateway's workers
 * under load. Any abort in a plugin module means part of the request path falls back to the
 * interpreter, which is the first place to look when the gateway costs more than it should.
 * A trace that compiles can still cost: a chain of side traces from one line (one per exit
 * taken) is a line with many traces, so traces are also counted per line where they start.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runH2load } from "../h2load.ts";
import { fallbackPlan } from "../plan.ts";
import type { ScenarioId } from "../scenarios.ts";
import { freePorts, GATEWAY_VARIANTS, startGateway } from "../targets.ts";

/** LuaJIT's share dir with jit/v.lua (Debian: /usr/share/luajit-2.1.0-beta3). */
export function jitShareDir(): string | undefined {
  for (const root of ["/usr/share", "/usr/local/share", "/usr/local/openresty/luajit/share"]) {
    if (!existsSync(root)) continue;
    for (const e of readdirSync(root)) {
      if (e.startsWith("luajit") && existsSync(path.join(root, e, "jit", "v.lua"))) return path.join(root, e);
    }
  }
  return undefined;
}

/** An empty file the workers (maybe nobody) can write: they open it after dropping privileges. */
export function workerWritable(file: string): string {
  writeFileSync(file, "");
  chmodSync(file, 0o666);
  return file;
}

function luaBasenames(dir: string, into: Set<string>): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) luaBasenames(path.join(dir, e.name), into);
    else if (e.name.endsWith(".lua")) into.add(e.name.slice(0, -4));
  }
}

/**
 * jit.v names chunks by basename (`classify.lua:89`), so a plugin line is one whose basename
 * is a module of the bundle (read from it, so a new module is never missed) or lualib_bundle.
 * A resty.core module of the same basename (response.lua) is counted too; the line number tells.
 */
export function pluginLinePattern(bundleLuaDirs: readonly string[]): RegExp {
  const names = new Set<string>(["lualib_bundle"]);
  for (const d of bundleLuaDirs) luaBasenames(d, names);
  const alt = [...names].sort().map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  return new RegExp(`\\b(${alt})\\.lua:\\d+`);
}

export interface GatewayTraces {
  readonly traces: number;
  readonly aborts: readonly string[];
  /** Lines where traces start, most first: root and side traces from any module. */
  readonly topLines: readonly { readonly where: string; readonly traces: number; readonly side: number }[];
}

/** Reads a jit.v log: aborts in plugin modules by count, and traces per start line. */
export function readTraceLog(text: string, plugin: RegExp, top = 15): GatewayTraces {
  const lines = text.split("\n");
  const aborts = new Map<string, number>();
  const starts = new Map<string, { traces: number; side: number }>();
  let traces = 0;
  for (const l of lines) {
    if (l.startsWith("[TRACE ---")) {
      if (!plugin.test(l)) continue;
      const key = l.replace(/^\[TRACE --- (\(\d+\/[^)]*\) )?/, "").replace(/\]$/, "");
      aborts.set(key, (aborts.get(key) ?? 0) + 1);
      continue;
    }
    // `[TRACE  12 (9/3) crypto.lua:82 stitch C:7f4d9d6936f0]`: number, (parent/exit) for a side trace, start.
    const m = /^\[TRACE\s+\d+\s+(\(\d+\/[^)]*\)\s+)?(\S+:\d+)/.exec(l);
    if (m === null) continue;
    traces++;
    const where = m[2] ?? "?";
    const s = starts.get(where) ?? { traces: 0, side: 0 };
    s.traces++;
    if (m[1] !== undefined) s.side++;
    starts.set(where, s);
  }
  return {
    traces,
    aborts: [...aborts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (x${n})`),
    topLines: [...starts]
      .sort((a, b) => b[1].traces - a[1].traces || a[0].localeCompare(b[0]))
      .slice(0, top)
      .map(([where, s]) => ({ where, traces: s.traces, side: s.side })),
  };
}

export const TRACE_SCENARIOS = ["poc", "mixed", "cache"] as const satisfies readonly ScenarioId[];

/** Runs the auth-cached variant (the longest hot path); `headersFor` gives each scenario's token. */
export async function gatewayTraceAborts(outDir: string, upstreamPort: number, headersFor: (id: ScenarioId) => Readonly<Record<string, string>> = () => ({})): Promise<GatewayTraces | undefined> {
  const jitDir = jitShareDir();
  if (jitDir === undefined) return undefined;
  const file = workerWritable(path.join(outDir, "gateway-jit-v.log"));
  const [port, admin] = (await freePorts(2)) as [number, number];
  const variant = GATEWAY_VARIANTS.find((v) => v.name === "auth-cached") ?? GATEWAY_VARIANTS[0]!;
  const gw = await startGateway(outDir, { ...variant, name: "jit-trace", jitTraceLog: { jitDir, file } }, port, admin, upstreamPort);
  try {
    for (const id of TRACE_SCENARIOS) {
      const plan = fallbackPlan(id);
      await runH2load({ port, ...plan, headers: { ...plan.headers, ...headersFor(id) }, connections: 8, durationS: 2, filePrefix: path.join(outDir, `jit-${id}`) });
    }
  } finally {
    await gw.stop();
  }
  const bundles = path.join(outDir, "gw-jit-trace", "bundles");
  const luaDirs = existsSync(bundles) ? readdirSync(bundles).map((v) => path.join(bundles, v, "lua")) : [];
  return readTraceLog(readFileSync(file, "utf8"), pluginLinePattern(luaDirs));
}
