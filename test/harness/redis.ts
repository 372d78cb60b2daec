/**
 * A redis-server of a test's own (Debian's, in memory only) on a free loopback port, which a
 * test can stop and start again to see the gateway lose and regain its cluster store.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { freePort } from "./ports.ts";

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  running(): boolean;
  /** Starts it again after stop(): empty, as a Redis without persistence restarts. */
  start(): Promise<void>;
  /** SIGKILL: the gateway sees refused connections at once. */
  stop(): Promise<void>;
  /** redis-cli against it; its trimmed stdout. */
  cli(...args: string[]): string;
}

/** Resolves once `cond` holds, with the milliseconds it took; throws after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const cli = (...args: string[]): string => spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" }).stdout.trim();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    running: () => child !== undefined && child.exitCode === null,
    async start() {
      child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
      await waitFor(() => cli("PING") === "PONG", 5000);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c === undefined || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await exited;
    },
    cli,
  };
  await server.start();
  return server;
}
