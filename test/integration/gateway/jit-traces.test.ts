/**
 * The request path's JIT contract, checked where it runs: a dedicated nginx built from the
 * test policy, with a test-only tracer (test/harness/lua/trace_stats.lua) attached to LuaJIT's
 * trace events in its worker. After a warm-up burst of mixed traffic it reports, per source
 * line where traces start, how many traces LuaJIT started there, and which root trace starts it
 * blacklisted.
 *
 * Why per line and not aborts: a `__TS__SparseArray*` call site compiled fine, but every
 * request left its trace at a guard exit, a new side trace was recorded there, and the chain
 * grew to `maxside` (200): each request walked hundreds of side traces, +30-54 µs, with no abort
 * at all (the bench's jit.v check counted only aborts, and skipped lualib_bundle).
 *
 * It has its own nginx so the shared stack's LuaJIT state stays untouched, and it borrows the
 * shared stack's upstream and authorization server.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jitShareDir } from "../../../bench/lua/gateway-traces.ts";
import { buildBundle } from "../../../compiler/bundle.ts";
import { activate, up, waitForVersion } from "../../../compiler/control.ts";
import { formatDiagnostic } from "../../../compiler/diagnostics.ts";
import { mint } from "../../harness/authz-client.ts";
import { burst, type BurstRequest } from "../../harness/burst.ts";
import { seededPatients, stack } from "../../harness/env.ts";
import { freePort } from "../../harness/ports.ts";

const TRACER = path.resolve(import.meta.dirname, "../../harness/lua/trace_stats.lua");

/**
 * The most traces allowed to start on one source line: a handful, far below a chain.
 * Measured after this burst (6000 requests; 20000 gave the same) on the fixed code: at most 6-11
 * on one line, nearly always core/str.lua:9 (`find(s, pattern)`: each caller inlines it with its
 * own constant pattern and gets its own side trace there), 48-86 traces in all. With the broken
 * pattern: 329-399 side traces at the `__TS__SparseArrayNew(...)` call in phases/access.lua
 * (1cbb71c's parent), 200-402 with the same call recreated in scopes/step.lua, and still 165-206
 * with LuaJIT's default maxside. 20 is the most seen plus as much again, for callers a shared
 * helper gains; a chain is ten times that.
 */
const MAX_TRACES_PER_LINE = 20;
/** Enough for the hot counters and for a chain to show: the fixed code's counts stop growing by 6000. */
const REQUESTS = 6000;
const CONNECTIONS = 8;

interface TraceLocation {
  readonly loc: string;
  readonly starts: number;
  readonly roots: number;
  readonly sides: number;
  readonly stops: number;
  readonly aborts: number;
  readonly reasons: Record<string, number>;
  readonly ops: readonly string[];
  readonly blacklisted: boolean;
}

interface WorkerStats {
  readonly pid: number;
  readonly totals: { starts: number; roots: number; sides: number; stops: number; aborts: number; flushes: number };
  readonly live: number;
  readonly mcode_bytes: number;
  readonly largest: { readonly ins: number; readonly loc?: string };
  readonly most_exits: { readonly exits: number; readonly loc?: string };
  readonly most_consts: { readonly consts: number; readonly loc?: string };
  readonly most_sides: { readonly sides: number; readonly loc?: string };
  readonly locations: readonly TraceLocation[];
}

let stateDir = "";
let statsFile = "";
let bundleLua = "";
let gateway = "";
let nginx: ChildProcess | undefined;
let memo: http.Server | undefined;

/**
 * The shared Medplum upstream, with each distinct GET answered once and then from memory.
 * Medplum takes about 50 ms for `Observation?patient=...` (the `patient` parameter is evaluated
 * per resource), which would hold the burst to about 150 requests a second; the gateway's Lua
 * sees the same bodies either way.
 */
async function startMemoUpstream(target: string): Promise<string> {
  const cache = new Map<string, { status: number; type: string; body: Buffer }>();
  const fetchOnce = async (url: string): Promise<{ status: number; type: string; body: Buffer }> => {
    const res = await fetch(`${target}${url}`, { headers: { accept: "application/fhir+json" } });
    const hit = { status: res.status, type: res.headers.get("content-type") ?? "application/fhir+json", body: Buffer.from(await res.arrayBuffer()) };
    if (cache.size < 1000) cache.set(url, hit);
    return hit;
  };
  memo = http.createServer((req, res) => {
    const url = req.url ?? "/";
    const hit = cache.get(url);
    void (hit !== undefined ? Promise.resolve(hit) : fetchOnce(url)).then(
      (r) => res.writeHead(r.status, { "content-type": r.type, "content-length": r.body.length }).end(r.body),
      () => res.writeHead(502).end(),
    );
  });
  await new Promise<void>((r) => memo!.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(memo.address() as AddressInfo).port}`;
}

/** SIGQUIT: workers finish, run exit_worker_by_lua (which writes the stats), and exit. */
async function stopNginx(): Promise<void> {
  const child = nginx;
  nginx = undefined;
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGQUIT");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

/** The chunk name relative to the bundle's Lua dir, where it is one (`phases/access.lua:193`). */
function shortLoc(loc: string): string {
  return loc.startsWith(`@${bundleLua}/`) ? loc.slice(bundleLua.length + 2) : loc;
}

/** Plugins, policy hooks and TSTL's lualib_bundle: everything the bundle ships as Lua. */
function inBundle(loc: string): boolean {
  return loc.startsWith(`@${bundleLua}/`);
}

beforeAll(async () => {
  const s = stack();
  const jitDir = jitShareDir();
  if (jitDir === undefined) throw new Error("LuaJIT's share dir (jit/vmdef.lua) not found: install luajit");
  // The test policy reads these when it is built (the global setup sets them in its own process).
  process.env["FHIR_EDGE_TEST_UPSTREAM"] = await startMemoUpstream(s.upstream);
  process.env["FHIR_EDGE_TEST_ISSUER"] = s.authz.issuer;
  process.env["FHIR_EDGE_TEST_MTLS_URL"] = s.authz.mtls.url;
  process.env["FHIR_EDGE_TEST_MTLS_DIR"] = path.dirname(s.authz.mtls.ca);
  process.env["FHIR_EDGE_TEST_INTROSPECTION_SECRET"] = s.authz.client.secret;
  // The limiter on the traced path too: two budgets that every secure and acme request spends from.
  process.env["FHIR_EDGE_TEST_BUDGETS"] = "on";
  // And the response cache (key, partition, generations, the write location's bump).
  process.env["FHIR_EDGE_TEST_CACHE"] = "on";

  stateDir = mkdtempSync(path.join(tmpdir(), "fhir-edge-jit-"));
  // Under the state dir, which the build opens to the workers (nobody, when started as root).
  const harnessLua = path.join(stateDir, "harness-lua");
  mkdirSync(harnessLua, { recursive: true });
  copyFileSync(TRACER, path.join(harnessLua, "trace_stats.lua"));
  statsFile = path.join(stateDir, "trace-stats.jsonl");
  const port = await freePort();
  const adminPort = await freePort();
  const built = await buildBundle({
    policyFile: s.policyFile,
    stateDir,
    options: {
      listen: `127.0.0.1:${port}`,
      admin: `127.0.0.1:${adminPort}`,
      workers: 1,
      workerLua: {
        luaPath: [`${harnessLua}/?.lua`, `${jitDir}/?.lua`],
        init: `require("trace_stats").start(${JSON.stringify(statsFile)})`,
        exit: 'require("trace_stats").finish()',
      },
    },
  });
  if (built.version === undefined || built.dir === undefined) throw new Error(`test policy does not build:\n${built.diagnostics.map(formatDiagnostic).join("\n")}`);
  bundleLua = path.join(built.dir, "lua");
  // Workers may run as nobody: the file must exist and be writable before they start.
  writeFileSync(statsFile, "");
  chmodSync(statsFile, 0o666);
  activate(stateDir, built.version);
  nginx = (await up({ stateDir, foreground: true })).child;
  if (!(await waitForVersion(`127.0.0.1:${adminPort}`, built.version, 10_000))) throw new Error(`trace gateway did not report version ${built.version} within 10 s`);
  gateway = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await stopNginx();
  await new Promise((r) => (memo === undefined ? r(undefined) : memo.close(r)));
  if (stateDir !== "" && process.env["FHIR_EDGE_KEEP_STATE"] === undefined) rmSync(stateDir, { recursive: true, force: true });
});

describe("LuaJIT traces of the request path under mixed traffic", () => {
  it("has no side-trace chain on any line and no blacklisted trace start in the bundle's Lua", async () => {
    const [a, b] = (await seededPatients("acme")) as [string, string];
    const userJwt = await mint({ scope: "user/*.rs" });
    const patientJwt = await mint({ scope: "patient/*.rs launch/patient", patient: a });
    const user = { authorization: `Bearer ${userJwt}` };
    const patient = { authorization: `Bearer ${patientJwt}` };
    const mix: BurstRequest[] = [
      { name: "anonymous search", path: `/acme/fhir/Observation?patient=${a}&category=laboratory` },
      { name: "anonymous read", path: `/acme/fhir/Patient/${b}` },
      { name: "user search", path: "/secure/fhir/Observation?category=vital-signs&_count=5", headers: user },
      { name: "user patient search", path: `/secure/fhir/Patient?_id=${b}`, headers: user },
      { name: "user read", path: `/secure/fhir/Patient/${a}`, headers: user },
      { name: "patient compartment search", path: `/secure/fhir/Observation?patient=${a}`, headers: patient },
      { name: "patient compartment search by subject", path: `/secure/fhir/Observation?subject=Patient/${a}&category=laboratory`, headers: patient },
      { name: "patient read", path: `/secure/fhir/Patient/${a}`, headers: patient },
      { name: "metadata", path: "/globex/fhir/metadata" },
    ];
    const result = await burst(gateway, mix, REQUESTS, CONNECTIONS);
    console.log(`trace burst: ${result.total} requests in ${result.ms} ms: ${JSON.stringify(result.statuses)}`);
    expect(result.errors, JSON.stringify(result.byName)).toBe(0);
    expect(Object.keys(result.statuses), JSON.stringify(result.byName)).toEqual(["200"]);
    // The budgets applied (and admitted): the limiter ran on the traced path.
    const limited = await fetch(`${gateway}/acme/fhir/Patient/${b}`);
    expect(limited.headers.get("ratelimit")).toMatch(/^"(wide|per-class)";r=[0-9]+;t=[0-9]+$/);

    await stopNginx();
    const workers = readFileSync(statsFile, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as WorkerStats);
    expect(workers, "one stats line from the worker's exit").toHaveLength(1);
    const w = workers[0]!;
    const locs = w.locations.map((l) => ({ ...l, ops: Array.isArray(l.ops) ? l.ops : [] }));
    const byTraces = [...locs].sort((x, y) => y.starts - x.starts);
    const top = byTraces.slice(0, 8).map((l) => `  ${shortLoc(l.loc)}: ${l.starts} (root ${l.roots}, side ${l.sides}, aborted ${l.aborts}) ${l.ops.join(",")} ${JSON.stringify(l.reasons)}`);
    const near = (what: string, n: number, loc: string | undefined): string => `${what} ${n} (${shortLoc(loc ?? "?")})`;
    console.log(
      `traces: ${JSON.stringify(w.totals)}, live ${w.live}, ${w.mcode_bytes} B of machine code; ` +
        [near("largest IR", w.largest.ins, w.largest.loc), near("constants", w.most_consts.consts, w.most_consts.loc), near("exits", w.most_exits.exits, w.most_exits.loc), near("sides of one root", w.most_sides.sides, w.most_sides.loc)].join(", ") +
        `; most per line:\n${top.join("\n")}`,
    );
    // The tracer saw the request path at all: some trace start in the bundle compiled.
    expect(locs.some((l) => inBundle(l.loc) && l.ops.some((op) => op.startsWith("J")))).toBe(true);

    const chains = byTraces.filter((l) => l.starts > MAX_TRACES_PER_LINE).map((l) => `${shortLoc(l.loc)}: ${l.starts} traces (${l.sides} side)`);
    expect(chains, `lines with more than ${MAX_TRACES_PER_LINE} traces`).toEqual([]);
    const blacklisted = locs.filter((l) => l.blacklisted && inBundle(l.loc)).map((l) => `${shortLoc(l.loc)} (${l.ops.join(",")}; ${JSON.stringify(l.reasons)})`);
    expect(blacklisted, "blacklisted trace starts in the bundle's Lua").toEqual([]);
    // A flush throws every trace away (maxtrace or maxmcode reached): the counts would lie.
    expect(w.totals.flushes).toBe(0);

    const errorLog = readFileSync(path.join(stateDir, "logs", "error.log"), "utf8");
    expect(errorLog.split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))).toEqual([]);
  });
});
