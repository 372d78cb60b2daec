/**
 * Process control: start/stop nginx on a state dir, switch bundles with `nginx -t` first, and
 * prove a switch took by asking the admin `/healthz` which version answers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import path from "node:path";
import { buildBundle, ensureStateDirs, readManifest, type BuildBundleParams, type BundleResult } from "./bundle.ts";
import { UserError } from "./errors.ts";
import { pidAlive as alive } from "./process.ts";
import { findRuntime } from "./runtime.ts";

export interface StateParams {
  readonly stateDir: string;
}

export interface Status {
  readonly running: boolean;
  readonly pid: number | undefined;
  readonly current: string | undefined;
  readonly previous: string | undefined;
}

export class ControlError extends UserError {}

const paths = (stateDir: string) => {
  const s = path.resolve(stateDir);
  return {
    state: s,
    current: path.join(s, "current"),
    previous: path.join(s, "previous"),
    conf: path.join(s, "current", "nginx.conf"),
    pid: path.join(s, "run", "nginx.pid"),
    errorLog: path.join(s, "logs", "error.log"),
  };
};

function linkTarget(link: string): string | undefined {
  try {
    return path.basename(readlinkSync(link));
  } catch {
    return undefined;
  }
}

/** Points `link` at `bundles/<version>` atomically: a new symlink renamed over the old one. */
function setLink(link: string, version: string): void {
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(path.join("bundles", version), tmp);
  renameSync(tmp, link);
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function status({ stateDir }: StateParams): Status {
  const p = paths(stateDir);
  const pid = readPid(p.pid);
  const running = pid !== undefined && alive(pid);
  return { running, pid: running ? pid : undefined, current: linkTarget(p.current), previous: linkTarget(p.previous) };
}

function nginxBinary(stateDir: string, version: string): string {
  const bundle = path.join(paths(stateDir).state, "bundles", version);
  try {
    return readManifest(bundle).runtime.nginx;
  } catch {
    return findRuntime().nginx;
  }
}

function adminUrl(admin: string): string {
  const m = /^(.*):([0-9]+)$/.exec(admin);
  const host = m === null ? "127.0.0.1" : (m[1] ?? "");
  const port = m === null ? admin : (m[2] ?? "");
  const h = host === "" || host === "0.0.0.0" || host === "*" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host;
  return `http://${h}:${port}/healthz`;
}

/** Polls the admin /healthz until it reports `version`; false on timeout. */
export async function waitForVersion(admin: string, version: string, timeoutMs: number): Promise<boolean> {
  const url = adminUrl(admin);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) {
        const body = (await res.json()) as { status?: unknown; version?: unknown };
        if (body.status === "ok" && body.version === version) return true;
      }
    } catch {
      // Not listening yet, or old workers closing: keep polling.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** `nginx -t` on a bundle's conf, with the state dir as prefix like the real start. */
export function testConf(stateDir: string, version: string): { ok: boolean; output: string } {
  const p = paths(stateDir);
  const conf = path.join(p.state, "bundles", version, "nginx.conf");
  const r = spawnSync(nginxBinary(stateDir, version), ["-t", "-q", "-p", p.state + "/", "-c", conf, "-e", p.errorLog], { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Makes `version` current, keeping the old current as previous. */
export function activate(stateDir: string, version: string): void {
  const p = paths(stateDir);
  const old = linkTarget(p.current);
  if (old === version) return;
  if (old !== undefined) setLink(p.previous, old);
  setLink(p.current, version);
}

export interface UpResult {
  readonly pid: number | undefined;
  /** Set in foreground mode: the nginx master itself. */
  readonly child: ChildProcess | undefined;
}

/**
 * Started as root, nginx workers run as nobody and must traverse to the bundle's Lua files.
 * Returns the first ancestor of `dir` they cannot enter, if any.
 */
function hiddenFromWorkers(dir: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

export async function up({ stateDir, foreground = false, waitMs = 10_000 }: StateParams & { foreground?: boolean; waitMs?: number }): Promise<UpResult> {
  const p = paths(stateDir);
  ensureStateDirs(p.state);
  const st = status({ stateDir });
  if (st.running) throw new ControlError(`already running (pid ${String(st.pid)})`);
  if (st.current === undefined || !existsSync(p.conf)) throw new ControlError(`no current bundle in ${p.state}; build first`);
  const hidden = hiddenFromWorkers(path.join(p.state, "bundles"));
  if (hidden !== undefined) {
    throw new ControlError(`nginx workers (user nobody) cannot enter ${hidden}, so they cannot load the bundle's Lua; chmod o+x ${hidden} or use another --state`);
  }
  const bin = nginxBinary(stateDir, st.current);
  const args = ["-p", p.state + "/", "-c", p.conf, "-e", p.errorLog];
  if (foreground) {
    const child = spawn(bin, [...args, "-g", "daemon off;"], { stdio: ["ignore", "inherit", "inherit"] });
    return { pid: child.pid, child };
  }
  const r = spawnSync(bin, args, { encoding: "utf8" });
  if (r.status !== 0) throw new ControlError(`nginx failed to start (exit ${String(r.status)}): ${`${r.stdout}${r.stderr}`.trim()}\nsee ${p.errorLog}`);
  const admin = readManifest(path.join(p.state, "bundles", st.current)).options.admin;
  if (waitMs > 0 && !(await waitForVersion(admin, st.current, waitMs))) {
    throw new ControlError(`nginx started but ${adminUrl(admin)} did not report version ${st.current} within ${waitMs} ms; see ${p.errorLog}`);
  }
  return { pid: readPid(p.pid), child: undefined };
}

export async function down({ stateDir, timeoutMs = 10_000 }: StateParams & { timeoutMs?: number }): Promise<boolean> {
  const st = status({ stateDir });
  if (!st.running || st.pid === undefined) return false;
  const pid = st.pid;
  // QUIT lets workers finish in-flight requests; TERM only if that takes too long.
  process.kill(pid, "SIGQUIT");
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, "SIGTERM");
  return true;
}

export interface SwitchResult {
  readonly version: string;
  readonly previous: string | undefined;
  /** False when nginx is not running, so there was nothing to signal. */
  readonly signalled: boolean;
}

/** HUPs a running master and waits for the new version; restores the links on failure. */
async function signalAndWait(stateDir: string, version: string, restore: () => void, timeoutMs: number): Promise<boolean> {
  const st = status({ stateDir });
  if (!st.running || st.pid === undefined) return false;
  process.kill(st.pid, "SIGHUP");
  const admin = readManifest(path.join(paths(stateDir).state, "bundles", version)).options.admin;
  if (await waitForVersion(admin, version, timeoutMs)) return true;
  // nginx keeps its old workers when the new conf fails at HUP time; make disk agree with them.
  restore();
  throw new ControlError(`nginx did not report version ${version} within ${timeoutMs} ms; links restored. See ${paths(stateDir).errorLog}`);
}

export interface ReloadParams extends BuildBundleParams {
  readonly timeoutMs?: number;
}

export type ReloadResult = { readonly ok: true; readonly build: BundleResult; readonly switched: SwitchResult } | { readonly ok: false; readonly build: BundleResult; readonly error: string };

/** build -> nginx -t -> switch `current` -> HUP -> wait for /healthz. A bad policy changes nothing. */
export async function reload(params: ReloadParams): Promise<ReloadResult> {
  const build = await buildBundle(params);
  if (build.version === undefined) return { ok: false, build, error: "policy has errors; the running version keeps serving" };
  const version = build.version;
  const t = testConf(params.stateDir, version);
  if (!t.ok) return { ok: false, build, error: `nginx -t failed for ${version}:\n${t.output}` };
  const p = paths(params.stateDir);
  const oldCurrent = linkTarget(p.current);
  const oldPrevious = linkTarget(p.previous);
  if (oldCurrent === version) return { ok: true, build, switched: { version, previous: oldPrevious, signalled: false } };
  activate(params.stateDir, version);
  const restore = (): void => {
    if (oldCurrent !== undefined) setLink(p.current, oldCurrent);
    if (oldPrevious !== undefined) setLink(p.previous, oldPrevious);
  };
  try {
    const signalled = await signalAndWait(params.stateDir, version, restore, params.timeoutMs ?? 10_000);
    return { ok: true, build, switched: { version, previous: oldCurrent, signalled } };
  } catch (e) {
    return { ok: false, build, error: (e as Error).message };
  }
}

/** Swaps current and previous, HUPs, and waits like reload. */
export async function rollback({ stateDir, timeoutMs = 10_000 }: StateParams & { timeoutMs?: number }): Promise<SwitchResult> {
  const p = paths(stateDir);
  const cur = linkTarget(p.current);
  const prev = linkTarget(p.previous);
  if (cur === undefined || prev === undefined) throw new ControlError("nothing to roll back to: no previous bundle");
  const t = testConf(stateDir, prev);
  if (!t.ok) throw new ControlError(`nginx -t failed for ${prev}:\n${t.output}`);
  setLink(p.current, prev);
  setLink(p.previous, cur);
  const restore = (): void => {
    setLink(p.current, cur);
    setLink(p.previous, prev);
  };
  const signalled = await signalAndWait(stateDir, prev, restore, timeoutMs);
  return { version: prev, previous: cur, signalled };
}

