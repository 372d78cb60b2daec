import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../../compiler/cli/main.ts";
import { DEMO_COMMANDS } from "../../../demo/commands.ts";
import { REPO, tempProject, TWO_TENANTS, type TempProject } from "./temp-project.ts";

let project: TempProject | undefined;
afterEach(() => project?.cleanup());

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe("fhir-edge CLI", () => {
  it("check passes the example policy", async () => {
    const r = await run(["check", "--policy", path.join(REPO, "examples", "gateway.policy.ts")]);
    expect(r.code).toBe(0);
    expect(r.out.join("\n")).toContain("2 tenant(s)");
  });

  it("check prints every diagnostic in one run and exits 1", async () => {
    project = tempProject();
    project.writePolicy(TWO_TENANTS.replace('"/globex"', '"/acme"').replace("http://127.0.0.1:8103/globex/R4", "ftp://x"));
    const r = await run(["check", "--policy", project.policyFile]);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([
      'FE2101 tenants[1].pathPrefix: duplicates tenants[0].pathPrefix "/acme" (hint: give each tenant its own prefix)',
      'FE2201 tenants[1].upstream.url: scheme "ftp" is not supported (hint: use http or https)',
      "2 errors",
    ]);
  });

  it("prints usage for --help and rejects unknown commands and flags", async () => {
    expect((await run(["--help"])).out.join("")).toContain("usage: fhir-edge");
    expect((await run(["frobnicate"])).code).toBe(2);
    expect((await run(["check", "--nope"])).code).toBe(2);
    expect((await run(["build", "--workers", "zero"])).code).toBe(2);
  });

  it("--help lists the demo subcommands, one line each, and sends no one to a source file", async () => {
    const help = (await run(["--help"])).out.join("\n");
    expect(help).toContain('\n  demo token --tenant T --scope "..." [--patient ID]\n              print an access token minted by the running demo\'s authorization server\n');
    expect(help).toContain("\n  demo patients --tenant T\n              print the demo tenant's patient ids, one a line\n");
    expect(help).toContain("`fhir-edge demo --help` lists every option");
    // gateway.policy.ts is the user's own file; a source file of fhir-edge is no help to them.
    expect(help).not.toMatch(/\b(demo|compiler|nginx|lua-plugins|policy-dsl)\/[\w./-]*\.ts\b/);
  });

  it("each demo subcommand the help lists is one the demo runs", async () => {
    project = tempProject();
    const { runDemoCommand } = await import("../../../demo/cli.ts");
    for (const c of DEMO_COMMANDS) {
      const err: string[] = [];
      // Past argument parsing, it looks for the running stack (none here).
      const code = await runDemoCommand([c.name, "--state", project.stateDir], () => {}, (l) => err.push(l));
      expect([c.name, code, err]).toEqual([c.name, 1, [`no demo stack found (${path.join(project.stateDir, "demo.json")} is missing); start it with \`npm start\``]]);
    }
    const help: string[] = [];
    expect(await runDemoCommand(["--help"], (l) => help.push(l))).toBe(0);
    expect(help.join("\n")).toContain("fhir-edge demo token --tenant T");
    // And each subcommand's own --help prints the same usage, not "Unknown option".
    for (const c of DEMO_COMMANDS) {
      const out: string[] = [];
      const err: string[] = [];
      expect(await runDemoCommand([c.name, "--help"], (l) => out.push(l), (l) => err.push(l)), c.name).toBe(0);
      expect(out.join("\n")).toBe(help.join("\n"));
      expect(err).toEqual([]);
    }
  });

  it("status works on an empty state dir", async () => {
    project = tempProject();
    const r = await run(["status", "--state", project.stateDir]);
    expect(r.out).toEqual(["running: no", "current: -", "previous: -"]);
  });
});

describe("fhir-edge bootstrap", () => {
  it("is idempotent and takes under a second when the runtime is present", async () => {
    const { runCli } = await import("../../harness/cli.ts");
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await runCli(["bootstrap"]);
      times.push(performance.now() - t0);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^runtime: (openresty|debian) \//m);
      expect(r.stdout).not.toContain("installed missing packages");
    }
    // The best of three, as a whole process (node start included), so a busy CI core does
    // not decide the result.
    expect(Math.min(...times)).toBeLessThan(1000);
  });
});
