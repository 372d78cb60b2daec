/**
 * Deploys as an operator would: `fhir-edge reload` under load, `rollback`, and a broken policy
 * that is refused while the running version keeps serving. The test leaves the gateway on the
 * version it found.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../harness/cli.ts";
import { stack } from "../../harness/env.ts";
import { closedLoop } from "../../harness/load.ts";

async function activeVersion(): Promise<string> {
  const res = await fetch(`${stack().admin}/healthz`);
  return ((await res.json()) as { version: string }).version;
}

function cliArgs(policyFile: string): string[] {
  const s = stack();
  return ["--policy", policyFile, "--state", s.stateDir, "--listen", s.gateway.replace("http://", ""), "--admin", s.admin.replace("http://", "")];
}

const tmpDir = path.resolve(import.meta.dirname, "../../.tmp");

afterAll(() => rmSync(tmpDir, { recursive: true, force: true }));

// Other files expect the version the global setup started; put it back even after a failure.
afterEach(async () => {
  if ((await activeVersion()) !== stack().version) await runCli(["rollback", "--state", stack().stateDir]);
});

describe("reload and rollback", () => {
  it("reloads under 10 s of load at 32 connections without losing a request, then rolls back", async () => {
    const original = await activeVersion();
    expect(original).toBe(stack().version);

    const load = closedLoop(`${stack().gateway}/acme/fhir/metadata`, 32, 10_000);
    await new Promise((r) => setTimeout(r, 3000));
    const reload = await runCli(["reload", ...cliArgs(stack().policyFile)], {
      FHIR_EDGE_TEST_UPSTREAM: stack().upstream,
      FHIR_EDGE_TEST_POLICY_NAME: "integration-tests-v2",
    });
    expect(reload.code, reload.stderr + reload.stdout).toBe(0);
    const result = await load;
    console.log(`reload under load: ${JSON.stringify(result)}`);

    const reloaded = await activeVersion();
    expect(reloaded).not.toBe(original);
    expect(result.total).toBeGreaterThan(1000);
    expect(result.errors, JSON.stringify(result)).toBe(0);
    expect(result.non2xx, JSON.stringify(result.statuses)).toBe(0);
    // Only connections idle at the instant of the HUP may be reset: at most one each.
    expect(result.retriedResets).toBeLessThanOrEqual(32);

    const rb = await runCli(["rollback", "--state", stack().stateDir]);
    expect(rb.code, rb.stderr + rb.stdout).toBe(0);
    expect(await activeVersion()).toBe(original);
  }, 60_000);

  it("refuses a policy with errors, shows every diagnostic, and keeps serving", async () => {
    const before = await activeVersion();
    mkdirSync(tmpDir, { recursive: true });
    const bad = path.join(tmpDir, "bad.policy.ts");
    writeFileSync(
      bad,
      `import { definePolicy } from "fhir-edge";
export default definePolicy({
  name: "broken",
  tenants: [
    { id: "acme", pathPrefix: "/acme", upstream: { url: "ftp://nowhere" } },
    { id: "acme", pathPrefix: "/acme", upstream: { url: "http://127.0.0.1:1/x" },
      routes: [{ id: "r", match: { resourceTypes: ["Pateint"] }, action: "deny" }] },
  ],
});
`,
    );
    const r = await runCli(["reload", ...cliArgs(bad)]);
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    const codes = new Set(out.match(/FE\d{4}/g) ?? []);
    expect(codes.size, out).toBeGreaterThanOrEqual(3);
    expect(out).toMatch(/tenants\[1\]\.id/);
    expect(out).toMatch(/tenants\[0\]\.upstream\.url/);
    expect(out).toMatch(/Pateint/);

    expect(await activeVersion()).toBe(before);
    expect((await fetch(`${stack().gateway}/acme/fhir/Patient`)).status).toBe(200);
  });
});
