/**
 * `fhir-edge demo patients --tenant acme | head -1` (the README's own line): a reader that closes
 * the CLI's stdout early must end the command quietly, with no EPIPE stack trace, for every
 * command that prints.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DemoState } from "../../../demo/cli.ts";
import { REPO } from "./temp-project.ts";

const BIN = path.join(REPO, "bin", "fhir-edge.mjs");
// Far more than a pipe's 64 KiB buffer, so the CLI is still writing when the reader goes.
const PATIENTS = Array.from({ length: 50_000 }, (_, i) => `acme-p${i}`);

// Made when the file loads, since the cases below name it.
const state = mkdtempSync(path.join(tmpdir(), "fhir-edge-epipe-"));
let server: Server;

/** A stand-in for the demo stack: its upstream's patient list and its token endpoint. */
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/__admin/patients/acme") res.end(JSON.stringify(PATIENTS));
    else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: "x".repeat(200_000) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const demo: DemoState = { pid: process.pid, gateway: base, admin: base, upstream: base, tenants: ["acme"], authz: { issuer: base, tokenEndpoint: `${base}/token`, client: { id: "demo-app", secret: "s" } } };
  writeFileSync(path.join(state, "demo.json"), JSON.stringify(demo));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(state, { recursive: true, force: true });
});

interface Closed {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly firstLine: string;
  readonly stderr: string;
}

/**
 * Runs the CLI with its stdout read the way `head -1` reads it: up to the first line, then the
 * pipe is closed. `immediately` closes it before the CLI writes anything at all.
 */
function runClosingStdout(args: readonly string[], immediately = false): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let stderr = "";
    if (immediately) child.stdout.destroy();
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("\n")) child.stdout.destroy();
    });
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, firstLine: out.split("\n")[0] ?? "", stderr }));
  });
}

describe("a CLI whose stdout closes early", () => {
  it("demo patients | head -1 prints the first patient and ends quietly", async () => {
    const r = await runClosingStdout(["demo", "patients", "--tenant", "acme", "--state", state]);
    expect(r).toEqual({ code: 0, signal: null, firstLine: "acme-p0", stderr: "" });
  });

  it.each([
    ["--help"],
    ["demo", "--help"],
    ["demo", "patients", "--tenant", "acme", "--state", state],
    ["demo", "token", "--tenant", "acme", "--scope", "patient/*.rs", "--state", state],
    ["status", "--state", state],
    ["check", "--policy", path.join(REPO, "examples", "gateway.policy.ts")],
    ["bootstrap", "--check"],
    ["verify-audit", state],
  ].map((args) => ({ args, name: args.slice(0, 2).join(" ") })))("fhir-edge $name ... ends with exit 0 and nothing on stderr", async ({ args }) => {
    const r = await runClosingStdout(args, true);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: "" });
  });
});
