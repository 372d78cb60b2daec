/**
 * What the benchmark measures, each a real nginx on loopback with one worker:
 * - a static upstream serving canned FHIR JSON from memory (`return`), so it is never the
 *   bottleneck;
 * - a bare proxy (no Lua) to it, with the same keepalive and path mapping as the gateway:
 *   the physical limit for any gateway on this machine;
 * - the floor: the gateway's own conf with every Lua phase empty and the upstream chosen in C,
 *   so gateway minus floor is what the Lua does, and floor minus bare what having Lua phases costs;
 * - the gateway built from bench/bench.policy.ts, and variants with a feature left out.
 *
 * Every server allows the same requests per connection (KEEPALIVE_REQUESTS): at a fixed rate,
 * h2load stops a client whose connection the server closed, and the run sends fewer requests.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildBundle, PACKAGE_ROOT } from "../compiler/bundle.ts";
import { activate, up } from "../compiler/control.ts";
import { formatDiagnostic } from "../compiler/diagnostics.ts";
import { findRuntime } from "../compiler/runtime.ts";
import type { JitTraceLog, OptionalPhase, WorkerLua } from "../compiler/emit/gateway-conf.ts";
import { block, comment, d, printConf, type ConfNode } from "../nginx/model.ts";

export interface Target {
  readonly name: string;
  readonly description: string;
  readonly port: number;
  /** CPU seconds (user + system) used so far by this target's nginx workers. */
  cpuSeconds(): number;
  /** Its nginx workers' pids (for perf). */
  workerPids(): number[];
  stop(): Promise<void>;
}

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** Requests per client connection, on every target alike (nginx's default is 1000). */
export const KEEPALIVE_REQUESTS = 100_000;

function childPids(masterPid: number | undefined): number[] {
  if (masterPid === undefined) return [];
  return readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, "utf8").trim().split(/\s+/).filter((x) => x !== "").map(Number);
}

/** utime + stime of the master's children (the workers), from /proc. */
function workersCpuSeconds(masterPid: number | undefined): number {
  if (masterPid === undefined) return Number.NaN;
  let ticks = 0;
  for (const pid of childPids(masterPid)) {
    // Fields after the ")" of comm: state is field 3, utime 14, stime 15 (1-based).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(rest[11]) + Number(rest[12]);
  }
  return ticks / CLK_TCK;
}

const TENANTS = ["acme", "globex"] as const;

const patient = JSON.stringify({
  resourceType: "Patient",
  id: "bench-p1",
  meta: { versionId: "1", lastUpdated: "2026-01-01T00:00:00Z" },
  identifier: [{ system: "urn:bench:mrn", value: "MRN-1001" }],
  name: [{ family: "Bench", given: ["Static"] }],
  gender: "female",
  birthDate: "1970-01-01",
});
const observation = {
  resourceType: "Observation",
  id: "bench-o1",
  status: "final",
  category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "vital-signs" }] }],
  code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
  subject: { reference: "Patient/bench-p1" },
  effectiveDateTime: "2026-01-01T10:00:00Z",
  valueQuantity: { value: 72, unit: "/min", system: "http://unitsofmeasure.org", code: "/min" },
};
// About 1.3 KB: the size DESIGN.md's bare-proxy figures were measured with.
const bundle = JSON.stringify({
  resourceType: "Bundle",
  type: "searchset",
  total: 3,
  entry: [1, 2, 3].map((i) => ({ fullUrl: `urn:bench:o${i}`, resource: { ...observation, id: `bench-o${i}` }, search: { mode: "match" } })),
});
const capability = JSON.stringify({ resourceType: "CapabilityStatement", status: "active", date: "2026-01-01", kind: "instance", fhirVersion: "4.0.1", format: ["json"] });
const smartConfig = JSON.stringify({ authorization_endpoint: "http://127.0.0.1/authorize", token_endpoint: "http://127.0.0.1/token", capabilities: ["launch-standalone"] });
const created = JSON.stringify({ ...observation, id: "bench-created" });

const FHIR_JSON = "application/fhir+json";

function common(prefix: string): ConfNode[] {
  return [
    d("pid", `${prefix}/nginx.pid`),
    d("error_log", `${prefix}/error.log`, "warn"),
    d("worker_processes", 1),
    block("events", [], [d("worker_connections", 4096)]),
  ];
}

/** The http-level settings both plain bench servers share: temp paths, no access log, long keep-alive. */
function httpBasics(prefix: string): ConfNode[] {
  return [
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((n) => d(`${n}_temp_path`, `${prefix}/${n}`)),
    d("access_log", "off"),
    d("keepalive_requests", KEEPALIVE_REQUESTS),
    d("keepalive_timeout", "65s"),
  ];
}

/** Canned answers by path shape; the path after the tenant's base decides, as it would upstream. */
function upstreamConf(prefix: string, port: number): ConfNode[] {
  const ret = (status: number, body: string): ConfNode[] => [d("default_type", FHIR_JSON), d("return", status, body)];
  return [
    comment("fhir-edge bench: static FHIR upstream (generated by bench/targets.ts)"),
    ...common(prefix),
    block("http", [], [
      ...httpBasics(prefix),
      // nginx strings have no escape for "$"; a geo default is not interpolated.
      block("geo", ["$fe_dollar"], [d("default", "$")]),
      block("server", [], [
        d("listen", `127.0.0.1:${port}`),
        block("location", ["~", "/metadata$"], ret(200, capability)),
        block("location", ["~", "/\\.well-known/smart-configuration$"], ret(200, smartConfig)),
        block("location", ["~", "/\\$export-poll-status$"], ret(202, "")),
        block("location", ["~", "/\\$export$"], [d("add_header", "Content-Location", "http://127.0.0.1/${fe_dollar}export-poll-status?_jobId=bench-job-1"), ...ret(202, "")]),
        // Type/id (a read) against everything else (searches, operations).
        block("location", ["~", "^/[a-z]+/R4/[A-Z][A-Za-z]+/[A-Za-z0-9.-]+$"], ret(200, patient)),
        block("location", ["/"], [block("if", ["($request_method", "=", "POST)"], [d("return", 201, created)]), ...ret(200, bundle)]),
      ]),
    ]),
  ];
}

/** The bare proxy: what any gateway does at minimum (prefix rewrite, keepalive upstream). */
function bareProxyConf(prefix: string, port: number, upstreamPort: number): ConfNode[] {
  return [
    comment("fhir-edge bench: bare nginx proxy, no Lua (generated by bench/targets.ts)"),
    ...common(prefix),
    block("http", [], [
      ...httpBasics(prefix),
      block("upstream", ["bench_up"], [d("server", `127.0.0.1:${upstreamPort}`), d("keepalive", 64)]),
      block("server", [], [
        d("listen", `127.0.0.1:${port}`),
        ...TENANTS.map((t) =>
          block("location", [`/${t}/fhir/`], [
            d("proxy_pass", `http://bench_up/${t}/R4/`),
            d("proxy_http_version", "1.1"),
            d("proxy_set_header", "Connection", '""'),
            d("proxy_set_header", "X-Tenant-ID", t),
          ]),
        ),
      ]),
    ]),
  ];
}

/**
 * Distinct free loopback ports, each held open until all are picked: two ports asked for one
 * after the other can come back the same, and a gateway whose admin port is its listen port
 * starts with a warning and serves the wrong server.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once("error", reject);
          srv.listen(0, "127.0.0.1", () => {
            const addr = srv.address();
            resolve(typeof addr === "object" && addr !== null ? addr.port : 0);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

async function waitListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGQUIT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
}

async function plainNginx(name: string, description: string, dir: string, port: number, conf: ConfNode[]): Promise<Target> {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "nginx.conf");
  writeFileSync(file, printConf(conf));
  const rt = findRuntime();
  const child = spawn(rt.nginx, ["-p", `${dir}/`, "-c", file, "-e", path.join(dir, "error.log"), "-g", "daemon off;"], { stdio: ["ignore", "inherit", "inherit"] });
  const died = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`${name} nginx exited (${String(code)}); see ${dir}/error.log`))));
  await Promise.race([waitListening(port), died]);
  return { name, description, port, cpuSeconds: () => workersCpuSeconds(child.pid), workerPids: () => childPids(child.pid), stop: stopper(child) };
}

/** CPU seconds of one process (redis-server is single-threaded for commands). */
function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** The cluster store of the limits-redis and limits-sync variants: Debian's redis-server, in memory only. */
export async function startRedis(port: number): Promise<Target> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1", () => sock.end(() => resolve(true)));
      sock.on("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { name: "redis", description: "redis-server (cluster store)", port, cpuSeconds: () => processCpuSeconds(child.pid), workerPids: () => (child.pid === undefined ? [] : [child.pid]), stop: stopper(child) };
}

export function startStaticUpstream(outDir: string, port: number): Promise<Target> {
  return plainNginx("upstream", "static FHIR upstream", path.join(outDir, "upstream"), port, upstreamConf(path.join(outDir, "upstream"), port));
}

export function startBareProxy(outDir: string, port: number, upstreamPort: number): Promise<Target> {
  const dir = path.join(outDir, "bare");
  return plainNginx("bare", "bare nginx proxy (no Lua)", dir, port, bareProxyConf(dir, port, upstreamPort));
}

export interface GatewayVariant {
  readonly name: string;
  readonly description: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly phasesOff?: readonly OptionalPhase[];
  readonly jitTraceLog?: JitTraceLog;
  /** The floor: every Lua phase empty (see `emptyLua` in compiler/emit/gateway-conf.ts). */
  readonly emptyLua?: boolean;
  /** Profiler hooks for the workers (bench/profile.ts). */
  readonly workerLua?: WorkerLua;
  /**
   * Which of the scenario's tokens (bench/scenarios.ts `tokens`) the requests carry; none for
   * an anonymous target, which ignores (and strips) whatever is sent.
   */
  readonly token?: "user" | "patient";
}

/** Measured in every round next to the bare proxy, like it a reference and no variant. */
export const FLOOR: GatewayVariant = { name: "floor", description: "floor: the gateway's conf, Lua phases empty, upstream chosen in C", emptyLua: true };

/** The gateway, then each feature left out in turn (where leaving it out makes sense). */
export const GATEWAY_VARIANTS: readonly GatewayVariant[] = [
  { name: "gateway", description: "gateway, bench policy (full pass-through chain)" },
  { name: "auth-cached", description: "gateway requiring a token (RS256 JWT, served from the token cache)", env: { BENCH_AUTH: "on" }, token: "user" },
  // Only where the scenario's requests name one patient (bench/scenarios.ts tokenFor).
  {
    name: "auth-patient",
    description: "gateway requiring a patient token (patient/ scopes: compartment checks on every request)",
    env: { BENCH_AUTH: "on" },
    token: "patient",
  },
  { name: "no-metrics", description: "gateway without the log phase (metrics)", phasesOff: ["log"] },
  // Two budgets on every request (the tenant's and one per class), sized never to refuse.
  { name: "limits", description: "gateway with two local budgets (shared-dict token buckets)", env: { BENCH_LIMITS: "local" } },
  { name: "limits-redis", description: "gateway with the two budgets in Redis, a script per request", env: { BENCH_LIMITS: "redis" } },
  { name: "limits-sync", description: "gateway with the two budgets counted locally, synced to Redis every 100 ms", env: { BENCH_LIMITS: "sync" } },
  { name: "no-routes", description: "gateway with empty route tables", env: { BENCH_ROUTES: "off" } },
  // The response cache: every cacheable request a hit after the warm-up, or every one a miss.
  { name: "cache", description: "gateway with the response cache (hits: every read type cached for an hour)", env: { BENCH_CACHE: "on" } },
  { name: "cache-miss", description: "gateway with the response cache storing nothing (every cacheable request a miss)", env: { BENCH_CACHE: "miss" } },
  { name: "auth-cache", description: "gateway requiring a token, with the response cache (hits in the user's partition)", env: { BENCH_AUTH: "on", BENCH_CACHE: "on" }, token: "user" },
  // The audit trail: every request an event, batched, sealed, spooled and shipped to a file sink.
  { name: "audit", description: "gateway with the audit trail (spool, hash chain, checkpoints, a file sink)", env: { BENCH_AUDIT: "on" } },
  { name: "audit-durable", description: "gateway with the audit trail, writes in the spool before their response", env: { BENCH_AUDIT: "durable" } },
  { name: "audit-fsync", description: "gateway with the audit trail, writes in the spool and fsynced before their response", env: { BENCH_AUDIT: "fsync" } },
];

export async function startGateway(outDir: string, variant: GatewayVariant, port: number, adminPort: number, upstreamPort: number): Promise<Target> {
  const stateDir = path.join(outDir, `gw-${variant.name}`);
  const saved = { ...process.env };
  Object.assign(process.env, { FHIR_EDGE_BENCH_UPSTREAM: `http://127.0.0.1:${upstreamPort}`, ...variant.env });
  if (variant.env?.["BENCH_AUDIT"] !== undefined) {
    const key = path.join(stateDir, "audit.key");
    mkdirSync(stateDir, { recursive: true });
    if (!existsSync(key)) writeFileSync(key, randomBytes(32), { mode: 0o600 });
    process.env["FHIR_EDGE_BENCH_AUDIT_KEY"] = key;
  }
  try {
    const built = await buildBundle({
      policyFile: path.join(PACKAGE_ROOT, "bench", "bench.policy.ts"),
      stateDir,
      options: {
        listen: `127.0.0.1:${port}`,
        admin: `127.0.0.1:${adminPort}`,
        workers: 1,
        keepaliveRequests: KEEPALIVE_REQUESTS,
        ...(variant.phasesOff !== undefined ? { phasesOff: variant.phasesOff } : {}),
        ...(variant.jitTraceLog !== undefined ? { jitTraceLog: variant.jitTraceLog } : {}),
        ...(variant.emptyLua === true ? { emptyLua: true } : {}),
        ...(variant.workerLua !== undefined ? { workerLua: variant.workerLua } : {}),
      },
    });
    if (built.version === undefined) throw new Error(`bench policy does not build:\n${built.diagnostics.map(formatDiagnostic).join("\n")}`);
    activate(stateDir, built.version);
    const child = (await up({ stateDir, foreground: true })).child;
    if (child === undefined) throw new Error("gateway did not start");
    await waitListening(port);
    return { name: variant.name, description: variant.description, port, cpuSeconds: () => workersCpuSeconds(child.pid), workerPids: () => childPids(child.pid), stop: stopper(child) };
  } finally {
    process.env = saved;
  }
}

/**
 * An anonymous target must hand back the upstream's own answers: 2xx and the same bytes, for
 * a read and a search on each tenant. Catches a floor (or a proxy) that measures its own
 * error page instead of proxying.
 */
export async function checkProxies(t: Target, upstreamPort: number): Promise<void> {
  for (const tenant of TENANTS) {
    for (const rest of ["Patient/bench-check", "Observation?patient=bench-check&_count=5"]) {
      const [got, want] = await Promise.all([
        fetch(`http://127.0.0.1:${t.port}/${tenant}/fhir/${rest}`, { headers: { accept: FHIR_JSON } }),
        fetch(`http://127.0.0.1:${upstreamPort}/${tenant}/R4/${rest}`, { headers: { accept: FHIR_JSON } }),
      ]);
      const [gotBody, wantBody] = await Promise.all([got.text(), want.text()]);
      if (got.status < 200 || got.status > 299 || gotBody !== wantBody) {
        throw new Error(`${t.name} does not proxy /${tenant}/fhir/${rest}: ${got.status} ${gotBody.slice(0, 200)} (upstream: ${want.status})`);
      }
    }
  }
}
