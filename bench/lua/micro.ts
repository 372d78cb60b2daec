/**
 * Runs bench/lua/micro.lua on the compiled plugins (the same Lua a bundle ships) and, under
 * `-jv`, lists every trace abort whose location is in a hot-path module.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PACKAGE_ROOT } from "../../compiler/bundle.ts";
import { buildPlugins } from "../../compiler/emit/plugins.ts";
import { fhirR4LuaModule } from "../../compiler/fhir-data.ts";
import type { LuaMicro } from "../report.ts";

// -jv names chunks by file basename (`classify.lua:89`).
const HOT = /\b(classify|uri|query|tenant|str|crypto|cache|scope|permission|authorize|compartment|cost|bucket|budgets)\.lua:\d+/;

export function luaMicro(iterations = 2_000_000): LuaMicro {
  const plugins = buildPlugins(PACKAGE_ROOT);
  if (plugins.dir === undefined) throw new Error("lua-plugins do not compile");
  const gen = path.join(PACKAGE_ROOT, "bench", "out", "lua-gen");
  mkdirSync(gen, { recursive: true });
  writeFileSync(path.join(gen, "fhir_r4.lua"), fhirR4LuaModule("-- bench copy"));
  // The scopes modules require it as generated.fhir_r4, as in a bundle.
  mkdirSync(path.join(gen, "generated"), { recursive: true });
  writeFileSync(path.join(gen, "generated", "fhir_r4.lua"), fhirR4LuaModule("-- bench copy"));
  const script = path.join(PACKAGE_ROOT, "bench", "lua", "micro.lua");
  const out = execFileSync("luajit", [script, plugins.dir, gen, String(iterations)], { encoding: "utf8" });
  const rows = out
    .trim()
    .split("\n")
    .map((l) => l.split("\t"))
    .map(([name, ns]) => ({ name: name ?? "", nsPerOp: Number(ns) }));

  const traceLog = path.join(gen, "jit-v.log");
  execFileSync("luajit", [`-jv=${traceLog}`, script, plugins.dir, gen, "200000"], { encoding: "utf8" });
  // An abort line: `[TRACE --- (parent) where -- reason at where]`. Count each distinct one.
  const counts = new Map<string, number>();
  for (const l of readFileSync(traceLog, "utf8").split("\n")) {
    if (!l.startsWith("[TRACE ---") || !HOT.test(l)) continue;
    const key = l.replace(/^\[TRACE --- (\(\d+\/[^)]*\) )?/, "").replace(/\]$/, "");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const aborts = [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (x${n})`);
  return { rows, aborts };
}
