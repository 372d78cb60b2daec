/**
 * The nginx.conf of a bundle, per the contract in docs/internals.md. Everything is absolute or
 * under the state dir, so the conf never depends on /etc/nginx.
 */
import { readFileSync } from "node:fs";
import type { PolicyIR } from "../ir.ts";
import { FE_VARS, type FeVar } from "../../lua-plugins/core/vars.ts";
import { blank, block, comment, d, lua, mapEntry, type ConfNode } from "../../nginx/model.ts";
import { cacheHttp, cacheLocations, cacheMaps, IGNORED_ALWAYS, writeLocation } from "./cache-conf.ts";

const FE_VAR_NAMES = Object.keys(FE_VARS) as FeVar[];

/** `$name` of a variable declared in core/vars: a name that is not there does not compile. */
function v(name: FeVar): string {
  return `$${name}`;
}

/** What the conf needs to know about the nginx build it runs on (see compiler/runtime.ts). */
export interface ConfRuntime {
  /** Absolute `.so` paths in load order (ndk before lua); empty for OpenResty. */
  readonly loadModules: readonly string[];
  /** Extra Lua search path entries after the bundle's own (`/usr/share/lua/5.1/?.lua`). */
  readonly luaPath: readonly string[];
  readonly luaCpath: readonly string[];
}

export interface BuildOptions {
  /** `host:port` of the gateway server. @default "127.0.0.1:8080" */
  readonly listen: string;
  /** `host:port` of the admin server (metrics, healthz). @default "127.0.0.1:9145" */
  readonly admin: string;
  /** @default 1 */
  readonly workers: number;
  /**
   * Request phases left out of the conf, so a benchmark can show what each costs. Not for
   * production: without `log` there are no metrics. @default []
   */
  readonly phasesOff?: readonly OptionalPhase[];
  /** Not for production: jit.v logs each trace event, slowly. @default none */
  readonly jitTraceLog?: JitTraceLog;
  /**
   * Benchmark only: the floor of Lua in nginx. The same conf, with every Lua phase wired to an
   * empty function and the tenant's upstream chosen by a per-tenant location in C, so a
   * benchmark can measure what having Lua phases at all costs. It enforces nothing. @default false
   */
  readonly emptyLua?: boolean;
  /** Benchmark and test tooling, not for production: Lua run in each worker at start and at exit. @default none */
  readonly workerLua?: WorkerLua;
  /**
   * Requests a client connection may send before nginx closes it (`keepalive_requests`). A
   * load generator at a fixed rate stops a client whose connection is closed, so a benchmark
   * sets the value its other servers use. Unset, the conf says nothing. @default 1000 (nginx's own)
   */
  readonly keepaliveRequests?: number;
}

/** Lua chunks for init_worker_by_lua and exit_worker_by_lua (a profiler, trace statistics). */
export interface WorkerLua {
  /** Extra `lua_package_path` entries (`/dir/?.lua`). */
  readonly luaPath?: readonly string[];
  readonly init?: string;
  readonly exit?: string;
}

export type OptionalPhase = "log";

/** Benchmark tooling: log every LuaJIT trace event of the workers with jit.v. */
export interface JitTraceLog {
  /** Directory holding `jit/v.lua` (LuaJIT's share dir). */
  readonly jitDir: string;
  readonly file: string;
}

export const DEFAULT_BUILD_OPTIONS: BuildOptions = { listen: "127.0.0.1:8080", admin: "127.0.0.1:9145", workers: 1 };

export interface GatewayConfInput {
  readonly ir: PolicyIR;
  readonly version: string;
  readonly stateDir: string;
  readonly bundleDir: string;
  readonly runtime: ConfRuntime;
  readonly options: BuildOptions;
}

/** Statuses nginx itself may produce (494: headers too large); all become OperationOutcomes. */
// Every status nginx may answer by itself: 411 (no length), 501 (an unknown Transfer-Encoding),
// 505 (an HTTP version it does not speak) and the TLS ones included.
const ERROR_STATUSES = [400, 403, 404, 405, 408, 411, 413, 414, 429, 494, 495, 496, 497, 500, 501, 502, 503, 504, 505];

/** Headers the gateway sets itself; their client copies are replaced rather than dropped. */
const GATEWAY_SET = new Set(["x-tenant-id", "x-request-id", "x-policy-version", "traceparent", "x-user-id", "x-client-id", "x-fhir-patient", "authorization", "x-break-glass"]);

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** A map over a fixed set of values: each is quoted by the printer, so tenant ids cannot break the conf. */
function map(source: string, target: FeVar, entries: readonly (readonly [string, string])[], dflt: string): ConfNode {
  return block("map", [source, v(target)], [...entries.map(([k, val]) => mapEntry(k, val)), d("default", dflt)]);
}

/**
 * The request id and trace context, computed by nginx in C when first read (no Lua on the hot
 * path). A client's X-Request-ID is kept only when it is 8-128 of [A-Za-z0-9._:-], so it can go
 * into logs and headers unescaped. A client's traceparent (version 00, lower-case hex, non-zero
 * ids) keeps its trace id and flags with the gateway's span as parent; otherwise a new trace
 * starts, with $request_id (32 random hex digits) as its id. The patterns are tested in
 * test/unit/nginx against an independent oracle.
 */
export const REQUEST_ID_PATTERN = "~^[A-Za-z0-9._:-]{8,128}$";
export const TRACEPARENT_PATTERN = "~^00-(?<fe_tp_trace>(?!0{32})[0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-(?<fe_tp_flags>[0-9a-f]{2})$";

export function traceMaps(requestIdHeader = "X-Request-ID"): ConfNode[] {
  const incoming = headerVariable(requestIdHeader);
  return [
    map(incoming, "fe_request_id", [[REQUEST_ID_PATTERN, incoming]], "$request_id"),
    map("$request_id", "fe_span_id", [["~^(?<fe_span16>[0-9a-f]{16})", "$fe_span16"]], ""),
    map("$http_traceparent", "fe_traceparent", [[TRACEPARENT_PATTERN, `00-$fe_tp_trace-${v("fe_span_id")}-$fe_tp_flags`]], `00-$request_id-${v("fe_span_id")}-01`),
  ];
}

/** Whether a request carries a body, in C: nginx refuses Content-Length and Transfer-Encoding together. */
export function bodyMap(): ConfNode {
  return map("$http_content_length$http_transfer_encoding", "fe_has_body", [["", ""], ["~^0+$", ""]], "1");
}

/** nginx's variable for a request header: `X-Request-ID` -> `$http_x_request_id`. */
function headerVariable(name: string): string {
  return `$http_${name.toLowerCase().replace(/-/g, "_")}`;
}

/** The tenant's upstream block, scheme and Host, from the one variable the access phase sets. */
function upstreamMaps(ir: PolicyIR): ConfNode[] {
  const host = (u: PolicyIR["tenants"][number]["upstream"]): string => ((u.scheme === "https" ? u.port === 443 : u.port === 80) ? u.host : `${u.host}:${u.port}`);
  return [
    map(v("fe_tenant_id"), "fe_upstream", ir.tenants.map((t) => [t.id, t.upstream.name] as const), "fe_none"),
    map(v("fe_tenant_id"), "fe_upstream_scheme", ir.tenants.map((t) => [t.id, t.upstream.scheme] as const), "http"),
    map(v("fe_tenant_id"), "fe_upstream_host", ir.tenants.map((t) => [t.id, host(t.upstream)] as const), "localhost"),
  ];
}

function upstreams(ir: PolicyIR): ConfNode[] {
  return ir.tenants.map((t) =>
    block("upstream", [t.upstream.name], [
      d("server", `${t.upstream.host}:${t.upstream.port}`),
      ...(t.upstream.keepalive > 0 ? [d("keepalive", t.upstream.keepalive)] : []),
    ]),
  );
}

/**
 * One internal location per issuer origin: the Lua identity code reaches discovery, JWKS and
 * introspection with ngx.location.capture, so nginx's own proxy does the HTTP, TLS and mTLS.
 * Nothing of the client's request goes along: no headers, no body.
 */
function idpLocations(ir: PolicyIR): ConfNode[] {
  return ir.idp_locations.map((l) => {
    const tls = l.tls;
    return block("location", [`${l.loc}/`], [
      d("internal"),
      d("rewrite", `^${l.loc}(/.*)$`, "$1", "break"),
      d("proxy_pass", l.origin),
      d("proxy_pass_request_headers", "off"),
      d("proxy_set_header", "Host", l.host_header),
      d("proxy_set_header", "Authorization", v("fe_idp_auth")),
      d("proxy_set_header", "Content-Type", v("fe_idp_ctype")),
      d("proxy_set_header", "Accept", "application/json"),
      d("proxy_connect_timeout", seconds(l.timeout_ms)),
      d("proxy_send_timeout", seconds(l.timeout_ms)),
      d("proxy_read_timeout", seconds(l.timeout_ms)),
      d("proxy_intercept_errors", "off"),
      ...(tls === null
        ? []
        : [
            d("proxy_ssl_verify", "on"),
            d("proxy_ssl_verify_depth", 4),
            d("proxy_ssl_trusted_certificate", tls.ca),
            d("proxy_ssl_server_name", "on"),
            d("proxy_ssl_name", l.host),
            ...(tls.client_cert !== null && tls.client_key !== null
              ? [d("proxy_ssl_certificate", tls.client_cert), d("proxy_ssl_certificate_key", tls.client_key)]
              : []),
          ]),
    ]);
  });
}

/**
 * The floor's stand-in for the access phase's routing: one regex location per tenant path,
 * which sets the upstream variables in C, then the same (empty) Lua access phase and proxying.
 */
function floorLocations(ir: PolicyIR, body: readonly ConfNode[]): ConfNode[] {
  return ir.tenants.map((t) => {
    const base = (t.path_prefix ?? "") + t.fhir_base;
    return block("location", ["~", `^${base.replace(/[.\\^$|?*+()[\]{}]/g, "\\$&")}(?<fe_floor_rest>/.*)$`], [
      ...body,
      d("set", v("fe_tenant_id"), t.id),
      d("set", v("fe_upstream_uri"), `${t.upstream.base_path}$fe_floor_rest$is_args$args`),
      lua("access_by_lua_block", 'require("phases.floor").access()'),
    ]);
  });
}

/** Hosts named by an address need no resolver; others use the machine's (ngx cosockets resolve only through `resolver`). */
function isAddress(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

function nameservers(): string[] {
  try {
    return readFileSync("/etc/resolv.conf", "utf8")
      .split("\n")
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined)
      .map((x) => (x.includes(":") ? `[${x}]` : x));
  } catch {
    return [];
  }
}

/**
 * The audit trail's shared state (spool size, the shipper's lock, counters), and what its
 * HTTP and FHIR sinks need to be reached from a timer: a resolver for host names, and the CA
 * bundle for https.
 */
function auditHttp(ir: PolicyIR): ConfNode[] {
  const a = ir.audit;
  if (a === null) return [];
  const remote = a.sinks.filter((s) => s.kind !== "file") as { host: string; scheme: string }[];
  const named = remote.some((s) => !isAddress(s.host));
  const ns = named ? nameservers() : [];
  return [
    d("lua_shared_dict", "fe_audit", "1m"),
    ...(ns.length > 0 ? [d("resolver", ...ns, "valid=60s"), d("resolver_timeout", "5s")] : []),
    ...(remote.some((s) => s.scheme === "https") ? [d("lua_ssl_trusted_certificate", DEFAULTS_CA), d("lua_ssl_verify_depth", 4)] : []),
  ];
}

const DEFAULTS_CA = "/etc/ssl/certs/ca-certificates.crt";

function gatewayServer(input: GatewayConfInput): ConfNode {
  const { ir, options } = input;
  const off = new Set(options.phasesOff ?? []);
  // proxy_*_timeout cannot take variables in nginx 1.22, so one value serves every tenant:
  // the largest, so no tenant is cut short. Per-tenant timeouts need a balancer_by_lua step.
  const connect = Math.max(...ir.tenants.map((t) => t.upstream.connect_timeout_ms), 1000);
  const read = Math.max(...ir.tenants.map((t) => t.upstream.read_timeout_ms), 1000);
  const proxy: ConfNode[] = [
  d("proxy_pass", `${v("fe_upstream_scheme")}://${v("fe_upstream")}${v("fe_upstream_uri")}`),
    d("proxy_http_version", "1.1"),
    d("proxy_set_header", "Connection", ""),
    d("proxy_set_header", "Host", v("fe_upstream_host")),
    // Header hygiene in C, per request for free: an empty value drops every client copy of
    // the header (any case), and the gateway's own values come from variables set in access.
    ...ir.strip_headers.filter((h) => !GATEWAY_SET.has(h) && h !== ir.request_id.header.toLowerCase()).map((h) => d("proxy_set_header", h, "")),
    d("proxy_set_header", "X-Tenant-ID", v("fe_tenant_id")),
    d("proxy_set_header", ir.request_id.header, v("fe_request_id")),
    d("proxy_set_header", "X-Policy-Version", input.version),
    d("proxy_set_header", "traceparent", v("fe_traceparent")),
    d("proxy_set_header", "X-User-ID", v("fe_user_id")),
    d("proxy_set_header", "X-Client-ID", v("fe_client_id")),
    d("proxy_set_header", "X-FHIR-Patient", v("fe_patient")),
    // The reason code of an allowed break-glass request; the client's own header never passes.
    d("proxy_set_header", "X-Break-Glass", v("fe_break_glass")),
    // Empty (the default) drops the client's token; a route with keepAuthorization forwards it.
    d("proxy_set_header", "Authorization", v("fe_authorization")),
    d("proxy_ssl_server_name", "on"),
    d("proxy_ssl_name", v("fe_upstream_host")),
    d("proxy_connect_timeout", seconds(connect)),
    d("proxy_read_timeout", seconds(read)),
    d("proxy_send_timeout", seconds(read)),
    // The gateway turns upstream errors into OperationOutcomes only when it made them itself.
    d("proxy_intercept_errors", "off"),
    // The server's add_header sets these on every response; the upstream's copies would double them.
    d("proxy_hide_header", ir.request_id.header),
    d("proxy_hide_header", "X-Content-Type-Options"),
    d("proxy_hide_header", "RateLimit"),
    d("proxy_hide_header", "RateLimit-Policy"),
    d("proxy_hide_header", "X-Cache"),
    // An upstream never steers the gateway: X-Accel-Redirect would reach internal locations.
    d("proxy_ignore_headers", ...IGNORED_ALWAYS),
  ];
  return block("server", [], [
    // No reuseport: with it a second gateway on the same port would bind silently instead of failing.
    d("listen", options.listen),
    d("server_name", "_"),
    // A URI, not a named location: nginx cannot redirect to a named location before it has
    // parsed a URI (a 414 or a bad request line), and the URI form keeps $status and our vars.
    d("error_page", ...ERROR_STATUSES, "/__fe_error"),
    // Server level, so the error page and every location count and tag their responses too.
    // On every response, errors included, from C: an empty value adds nothing. Subrequests
    // (issuer calls, checked reads) get none; the upstream's own copies are hidden.
    d("add_header", input.ir.request_id.header, v("fe_request_id"), "always"),
    d("add_header", "X-Content-Type-Options", "nosniff", "always"),
    // The rate limiter's fields of the tightest budget, on 200s and 429s alike.
    d("add_header", "RateLimit-Policy", v("fe_ratelimit_policy"), "always"),
    d("add_header", "RateLimit", v("fe_ratelimit"), "always"),
    ...(ir.cache === null ? [] : [d("add_header", "X-Cache", v("fe_x_cache"), "always")]),
    ...(off.has("log") ? [] : [lua("log_by_lua_block", options.emptyLua === true ? 'require("phases.floor").log()' : 'require("phases.log").run()')]),
    blank,
    ...(options.emptyLua === true ? floorLocations(ir, proxy) : [block("location", ["/"], [lua("access_by_lua_block", 'require("phases.access").run()'), ...proxy])]),
    blank,
    block("location", ["=", "/__fe_error"], [d("internal"), lua("content_by_lua_block", 'require("phases.errors").from_nginx()')]),
    // The same proxying, for reads whose response the access phase must check before the
    // client gets a byte (ngx.location.capture with the parent's variables shared).
    block("location", ["=", "/__fe_fetch"], [d("internal"), ...proxy]),
    ...(options.emptyLua === true ? [] : cacheLocations(ir, proxy)),
    ...(options.emptyLua !== true && ir.cache === null && (ir.audit?.durable.length ?? 0) > 0 ? [writeLocation(proxy)] : []),
    // Never served: the `set`s here only declare the variables Lua writes (core/vars), so no
    // request pays for resetting them. Unwritten, they read as empty, and an empty
    // proxy_set_header sends nothing.
    block("location", ["=", "/__fe_vars"], [d("internal"), ...FE_VAR_NAMES.filter((n) => FE_VARS[n] === "set").map((n) => d("set", v(n), "")), d("return", 404)]),
    ...idpLocations(ir),
  ]);
}

function adminServer(input: GatewayConfInput): ConfNode {
  return block("server", [], [
    d("listen", input.options.admin),
    d("server_name", "_"),
    block("location", ["=", "/metrics"], [lua("content_by_lua_block", 'require("phases.admin").metrics()')]),
    block("location", ["=", "/healthz"], [lua("content_by_lua_block", 'require("phases.admin").healthz()')]),
    block("location", ["/"], [d("return", 404)]),
  ]);
}

export function gatewayConf(input: GatewayConfInput): ConfNode[] {
  const { ir, stateDir, bundleDir, runtime, options } = input;
  const luaDir = `${bundleDir}/lua`;
  const jit = options.jitTraceLog;
  const hooks = options.workerLua;
  const luaPath = [`${luaDir}/?.lua`, `${luaDir}/?/init.lua`, ...runtime.luaPath, ...(jit !== undefined ? [`${jit.jitDir}/?.lua`] : []), ...(hooks?.luaPath ?? [])].join(";") + ";;";
  const luaCpath = [...runtime.luaCpath].join(";") + ";;";
  const tmp = (name: string): ConfNode => d(`${name}_temp_path`, `${stateDir}/tmp/${name}`);
  return [
    comment(`Generated by fhir-edge for bundle ${input.version}. Do not edit: rebuild the policy instead.\npolicy: ${ir.name}`),
    blank,
    ...runtime.loadModules.map((m) => d("load_module", m)),
    d("pid", `${stateDir}/run/nginx.pid`),
    d("error_log", `${stateDir}/logs/error.log`, "warn"),
    d("worker_processes", options.workers),
    // Issuer client secrets come from the environment, never from the bundle.
    ...[...new Set([...ir.issuers.flatMap((i) => (i.introspection === null ? [] : [i.introspection.secret_env])), ...(ir.ratelimit.redis?.password_env != null ? [ir.ratelimit.redis.password_env] : [])])].map((e) => d("env", e)),
    blank,
    block("events", [], [d("worker_connections", 4096)]),
    blank,
    block("http", [], [
      d("lua_package_path", luaPath),
      d("lua_package_cpath", luaCpath),
      d("lua_shared_dict", "fe_metrics", "8m"),
      // Validated tokens by SHA-256 (LRU at the limit: an evicted token is validated again).
      d("lua_shared_dict", "fe_tokens", "16m"),
      // Known-bad tokens and kids: attacker-driven, so apart, where a flood evicts only its own kind.
      d("lua_shared_dict", "fe_auth_neg", "4m"),
      // JWKS documents, discovery results and single-flight locks.
      d("lua_shared_dict", "fe_auth", "4m"),
      // Token buckets (ratelimit/bucket): a full bucket is no entry, so this holds the busy ones.
      d("lua_shared_dict", "fe_ratelimit", `${Math.max(1, Math.ceil(ir.ratelimit.dict_bytes / 1024))}k`),
      // A cosocket failure (Redis down) would log an [error] per attempt; ratelimit/cluster
      // logs its own warning once per interval instead, and counts every failure.
      d("lua_socket_log_errors", "off"),
      ...cacheHttp(ir, stateDir),
      ...auditHttp(ir),
      lua("init_by_lua_block", 'require("phases.init").init()'),
      lua("init_worker_by_lua_block", 'require("phases.init").init_worker()' + (jit !== undefined ? `\nrequire("jit.v").on(${JSON.stringify(jit.file)})` : "") + (hooks?.init !== undefined ? `\n${hooks.init}` : "")),
      ...(hooks?.exit !== undefined || ir.audit !== null
        ? [lua("exit_worker_by_lua_block", (ir.audit !== null ? 'require("phases.init").exit_worker()' : "") + (hooks?.exit !== undefined ? `\n${hooks.exit}` : ""))]
        : []),
      blank,
      tmp("client_body"),
      tmp("proxy"),
      tmp("fastcgi"),
      tmp("uwsgi"),
      tmp("scgi"),
      // Off by default: the Lua log phase writes the PHI-free audit trail, and a second
      // per-request write costs throughput. Turn on by editing here only when debugging.
      d("access_log", "off"),
      d("server_tokens", "off"),
      // $fe_* variables are read on error pages for requests nginx refused before any `set`
      // ran; empty is the right value there, and a warning per attack request is noise.
      d("uninitialized_variable_warn", "off"),
      d("default_type", "application/octet-stream"),
      // Room for a 20 KB Authorization header to reach Lua, which answers it with a 401 (a
      // 494 from nginx could not say WWW-Authenticate). The access phase holds URIs to 8 KB.
      d("large_client_header_buffers", 4, "32k"),
      d("client_max_body_size", ir.limits.max_body_bytes),
      // Write bodies are checked whole, in memory (fhir/body): nginx allocates what a request
      // declares, up to this, never a temp file that the check could not see.
      d("client_body_buffer_size", ir.limits.max_body_bytes),
      d("client_body_in_single_buffer", "on"),
      // Header names outside [A-Za-z0-9-] are kept, so http/headers can refuse them with a
      // 400, rather than dropped without a word.
      d("ignore_invalid_headers", "off"),
      d("keepalive_timeout", "65s"),
      ...(options.keepaliveRequests !== undefined ? [d("keepalive_requests", options.keepaliveRequests)] : []),
      blank,
      ...traceMaps(ir.request_id.header),
      bodyMap(),
      ...upstreamMaps(ir),
      ...cacheMaps(ir),
      blank,
      ...upstreams(ir),
      blank,
      gatewayServer(input),
      blank,
      adminServer(input),
    ]),
  ];
}
