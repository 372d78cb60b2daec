/**
 * Finds the nginx + Lua runtime and, on request, installs Debian's packages for it.
 * OpenResty on PATH wins; otherwise Debian's nginx with its lua module.
 * Presence is checked by file existence only, so `bootstrap` costs a few stat calls when all is there.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import type { ConfRuntime } from "./emit/gateway-conf.ts";
import { UserError } from "./errors.ts";

export interface RuntimeInfo extends ConfRuntime {
  readonly kind: "openresty" | "debian";
  readonly nginx: string;
  /** Directory of the dynamic modules (Debian); undefined for OpenResty. */
  readonly modulesDir: string | undefined;
}

interface Requirement {
  readonly what: string;
  readonly file: string;
  readonly pkg: string;
  /** Test and bench tools are not needed to run the gateway. */
  readonly forTests?: boolean;
}

const DEBIAN_MODULES = "/usr/lib/nginx/modules";
const LUA_SHARE = "/usr/share/lua/5.1";
const LUA_LIB = "/usr/lib/x86_64-linux-gnu/lua/5.1";

/** `luajit` (the Debian package) conflicts with `luajit2`, which is the one wanted here. */
export const DEBIAN_PACKAGES = [
  "nginx",
  "libnginx-mod-http-ndk",
  "libnginx-mod-http-lua",
  "lua-resty-core",
  "lua-resty-lrucache",
  "lua-cjson",
  "luajit2",
  "redis-server",
  "lua-nginx-redis",
  "nghttp2-client",
  "wrk",
] as const;

const DEBIAN_REQUIREMENTS: readonly Requirement[] = [
  { what: "nginx", file: "/usr/sbin/nginx", pkg: "nginx" },
  { what: "ndk module", file: `${DEBIAN_MODULES}/ndk_http_module.so`, pkg: "libnginx-mod-http-ndk" },
  { what: "lua module", file: `${DEBIAN_MODULES}/ngx_http_lua_module.so`, pkg: "libnginx-mod-http-lua" },
  { what: "resty.core", file: `${LUA_SHARE}/resty/core.lua`, pkg: "lua-resty-core" },
  { what: "resty.lrucache", file: `${LUA_SHARE}/resty/lrucache.lua`, pkg: "lua-resty-lrucache" },
  { what: "cjson", file: `${LUA_LIB}/cjson.so`, pkg: "lua-cjson" },
  { what: "luajit", file: "/usr/bin/luajit", pkg: "luajit2" },
];

const TOOL_REQUIREMENTS: readonly Requirement[] = [
  { what: "redis-server", file: "/usr/bin/redis-server", pkg: "redis-server", forTests: true },
  { what: "lua-resty-redis", file: `${LUA_SHARE}/nginx/redis.lua`, pkg: "lua-nginx-redis", forTests: true },
  { what: "h2load", file: "/usr/bin/h2load", pkg: "nghttp2-client", forTests: true },
  { what: "wrk", file: "/usr/bin/wrk", pkg: "wrk", forTests: true },
];

function onPath(bin: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const p = path.join(dir, bin);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function debianRuntime(): RuntimeInfo {
  return {
    kind: "debian",
    nginx: "/usr/sbin/nginx",
    modulesDir: DEBIAN_MODULES,
    // ndk first: the lua module refuses to load without it.
    loadModules: [`${DEBIAN_MODULES}/ndk_http_module.so`, `${DEBIAN_MODULES}/ngx_http_lua_module.so`],
    luaPath: [`${LUA_SHARE}/?.lua`, `${LUA_SHARE}/?/init.lua`],
    luaCpath: [`${LUA_LIB}/?.so`],
  };
}

function openrestyRuntime(bin: string): RuntimeInfo {
  // OpenResty compiles lua in and finds its own lualib through the default path (`;;`).
  return { kind: "openresty", nginx: bin, modulesDir: undefined, loadModules: [], luaPath: [], luaCpath: [] };
}

/** The runtime to build for, without checking that its Lua libraries are installed. */
export function findRuntime(): RuntimeInfo {
  if (process.env["FHIR_EDGE_NO_OPENRESTY"] !== "1") {
    const bin = onPath("openresty");
    if (bin !== undefined) return openrestyRuntime(bin);
  }
  return debianRuntime();
}

export interface BootstrapResult {
  readonly runtime: RuntimeInfo;
  readonly missing: readonly { what: string; file: string; pkg: string }[];
  readonly installed: boolean;
}

export function missingRequirements(runtime: RuntimeInfo, includeTools: boolean): Requirement[] {
  const reqs = [...(runtime.kind === "debian" ? DEBIAN_REQUIREMENTS : []), ...(includeTools ? TOOL_REQUIREMENTS : [])];
  return reqs.filter((r) => !existsSync(r.file));
}

export function installCommand(pkgs: readonly string[]): string {
  return `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
}

export class BootstrapError extends UserError {}

/**
 * Checks the runtime and the test tools; installs missing Debian packages when `install` is set
 * and we are root. Otherwise throws with the exact command to run. Idempotent.
 */
export function bootstrap(opts: { install: boolean; includeTools?: boolean; log?: (line: string) => void }): BootstrapResult {
  const log = opts.log ?? ((): void => undefined);
  const runtime = findRuntime();
  const includeTools = opts.includeTools ?? true;
  const missing = missingRequirements(runtime, includeTools);
  if (missing.length === 0) return { runtime, missing: [], installed: false };
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  const cmd = installCommand(pkgs);
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!opts.install || !isRoot || !existsSync("/usr/bin/apt-get")) {
    const why = missing.map((m) => `${m.what} (${m.file})`).join(", ");
    throw new BootstrapError(`missing: ${why}\nrun as root: ${cmd}`);
  }
  log(`installing: ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update"], { stdio: "inherit", env });
  if (update.status !== 0) throw new BootstrapError(`apt-get update failed (exit ${String(update.status)})`);
  const install = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], { stdio: "inherit", env });
  if (install.status !== 0) throw new BootstrapError(`apt-get install failed (exit ${String(install.status)})`);
  const still = missingRequirements(runtime, includeTools);
  if (still.length > 0) throw new BootstrapError(`still missing after install: ${still.map((m) => m.file).join(", ")}`);
  return { runtime, missing, installed: true };
}
