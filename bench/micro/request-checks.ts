/**
 * Microbenchmark of the per-request checks issue #16 added, inside a real nginx worker:
 * `http/headers.checkHeaderNames` on a typical SMART request's headers (a 1.5 KB bearer token
 * included), against `ngx.req.raw_header` (the obvious alternative) and an empty loop.
 * Run: `npx tsx bench/micro/request-checks.ts [rounds]`. Prints ns per call per round; only the
 * ratios within one run mean anything on these shared machines.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildPlugins } from "../../compiler/emit/plugins.ts";
import { findRuntime } from "../../compiler/runtime.ts";
import { freePort } from "../../test/harness/ports.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const rounds = Number(process.argv[2] ?? 5);
const built = buildPlugins(ROOT);
if (built.dir === undefined) throw new Error("lua-plugins do not compile");
const rt = findRuntime();
const dir = mkdtempSync(path.join(tmpdir(), "fe-micro-"));
mkdirSync(path.join(dir, "logs"));
const port = await freePort();
const loop = (label: string, body: string): string => `
  ngx.update_time(); local t0 = ngx.now()
  for i = 1, N do ${body} end
  ngx.update_time(); out[#out + 1] = string.format("%s %.0f", "${label}", (ngx.now() - t0) / N * 1e9)`;
writeFileSync(
  path.join(dir, "nginx.conf"),
  `${rt.loadModules.map((m) => `load_module ${m};`).join("\n")}
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events {}
http {
  access_log off;
  ignore_invalid_headers off;
  lua_package_path "${built.dir}/?.lua;${rt.luaPath.join(";")};;";
  lua_package_cpath "${rt.luaCpath.join(";")};;";
  server {
    listen 127.0.0.1:${port};
    location / { content_by_lua_block {
      local h = require("http.headers")
      local N = 200000
      local out = {}
      local v
      ${loop("empty_loop_ns", "v = i")}
      ${loop("check_header_names_ns", "v = h.checkHeaderNames()")}
      ${loop("raw_header_ns", "v = ngx.req.raw_header(true)")}
      ngx.say(table.concat(out, " "))
    } }
  }
}
`,
);
const start = spawnSync(rt.nginx, ["-p", dir, "-c", `${dir}/nginx.conf`], { encoding: "utf8" });
if (start.status !== 0) throw new Error(start.stderr);
try {
  await new Promise((r) => setTimeout(r, 300));
  const token = Buffer.alloc(1100, 7).toString("base64url");
  const headers = { authorization: `Bearer ${token}`, accept: "application/fhir+json", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-request-id": "bench-req-00000001" };
  for (let r = 1; r <= rounds; r++) console.log(`round ${r}: ${(await (await fetch(`http://127.0.0.1:${port}/`, { headers })).text()).trim()}`);
} finally {
  spawnSync(rt.nginx, ["-p", dir, "-c", `${dir}/nginx.conf`, "-s", "stop"]);
}
