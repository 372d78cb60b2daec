/**
 * The trace check that matters most: LuaJIT's own account (jit.v) of the gateway's workers
 * under load. Any abort in a plugin module means part of the request path falls back to the
 * interpreter, which is the first place to look when the gateway costs more than it should.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runH2load } from "../h2load.ts";
import { fallbackPlan } from "../plan.ts";
import { GATEWAY_VARIANTS, startGateway } from "../targets.ts";
import { freePort } from "../../test/harness/ports.ts";

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

// Basenames of lua-plugins modules (jit.v prints chunk basenames).
const PLUGIN = /\b(access|log|header_filter|errors|init|classify|uri|request_id|tenant|str|gateway|outcome|metrics|identity|bearer|cache|crypto|jwt|jwks|keys|idp|introspect)\.lua:\d+/;

export interface GatewayTraces {
  readonly traces: number;
  readonly aborts: readonly string[];
}

/** Runs the auth-cached variant (the longest hot path), so `headers` should carry its token. */
export async function gatewayTraceAborts(outDir: string, upstreamPort: number, headers: Readonly<Record<string, string>> = {}): Promise<GatewayTraces | undefined> {
  const jitDir = jitShareDir();
  if (jitDir === undefined) return undefined;
  const file = path.join(outDir, "gateway-jit-v.log");
  // Workers may run as nobody: the log must exist and be writable before they start.
  writeFileSync(file, "");
  chmodSync(file, 0o666);
  const port = await freePort();
  const variant = GATEWAY_VARIANTS.find((v) => v.name === "auth-cached") ?? GATEWAY_VARIANTS[0]!;
  const gw = await startGateway(outDir, { ...variant, name: "jit-trace", jitTraceLog: { jitDir, file } }, port, await freePort(), upstreamPort);
  try {
    for (const id of ["poc", "mixed", "cache"] as const) {
      const plan = fallbackPlan(id);
      await runH2load({ port, ...plan, headers: { ...plan.headers, ...headers }, connections: 8, durationS: 2, filePrefix: path.join(outDir, `jit-${id}`) });
    }
  } finally {
    await gw.stop();
  }
  const lines = readFileSync(file, "utf8").split("\n");
  const counts = new Map<string, number>();
  for (const l of lines) {
    if (!l.startsWith("[TRACE ---") || !PLUGIN.test(l)) continue;
    const key = l.replace(/^\[TRACE --- (\(\d+\/[^)]*\) )?/, "").replace(/\]$/, "");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return {
    traces: lines.filter((l) => /^\[TRACE\s+\d+/.test(l)).length,
    aborts: [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (x${n})`),
  };
}
