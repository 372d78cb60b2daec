/**
 * What an operator sees when a budget is wrong: the real `fhir-edge check` on a policy file,
 * its exit code and the lines it prints (stable code, path, message, hint). Issue #11, "Bad input".
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../../harness/cli.ts";

const DSL = path.resolve(import.meta.dirname, "../../../policy-dsl/index.ts");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A policy file with one tenant (with issuers) holding `budgets` (TypeScript source), plus YAML tenants. */
function policyFile(budgets: string, opts: { limits?: string; yaml?: Record<string, string> } = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), "fhir-edge-budget-"));
  dirs.push(dir);
  const file = path.join(dir, "gateway.policy.ts");
  writeFileSync(
    file,
    `import { definePolicy, perHour, perMinute, perSecond, tokens } from ${JSON.stringify(DSL)};
void perHour; void perMinute; void perSecond; void tokens;
export default definePolicy({
  name: "t",
  ${opts.limits === undefined ? "" : `limits: ${opts.limits},`}
  issuers: [{ id: "idp", issuer: "https://idp.example.org", audiences: ["fhir"], mode: "jwt" }],
  tenants: [
    { id: "acme", pathPrefix: "/acme", upstream: { url: "http://127.0.0.1:8103/acme/R4" }, issuers: ["idp"], budgets: ${budgets} },
  ],
});
`,
  );
  for (const [name, text] of Object.entries(opts.yaml ?? {})) {
    mkdirSync(path.join(dir, "tenants"), { recursive: true });
    writeFileSync(path.join(dir, "tenants", name), text);
  }
  return file;
}

async function check(file: string): Promise<{ code: number | null; lines: string[]; stdout: string }> {
  const r = await runCli(["check", "--policy", file]);
  return { code: r.code, lines: r.stderr.split("\n").filter((l) => l !== ""), stdout: r.stdout };
}

describe("fhir-edge check on budgets", () => {
  it("passes well-formed budgets whose bursts pay for one request of their classes", async () => {
    const file = policyFile(`[
      { id: "per-client", per: ["client_id"], rate: perMinute(600), burst: tokens(120) },
      { id: "exports", per: ["client_id"], classes: ["export"], rate: perHour(10), burst: tokens(10) },
      { id: "tenant", rate: perSecond(100) },
    ]`);
    const r = await check(file);
    expect(r.lines).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("1 tenant(s)");
  });

  it("fails a malformed budget with each problem's code, path and hint, all in one run", async () => {
    const file = policyFile(`[{ id: "flat", rate: 600, burst: tokens(0), per: ["client_id", "ip"] }]`);
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      'FE1004 tenants[0].budgets[0].per[1]: must be one of "tenant", "client_id", "sub", "patient", "class"',
      "FE1003 tenants[0].budgets[0].rate: must be object (hint: perSecond(n), perMinute(n) or perHour(n))",
      "FE1006 tenants[0].budgets[0].burst.tokens: must be >= 1 (hint: tokens(n))",
      "3 errors",
    ]);
  });

  it("hints the unit on a rate or burst built by hand, not on the neighbouring fields", async () => {
    const file = policyFile(`[{ id: "hand", rate: { tokens: 0, perMs: 1000 }, burst: { tokens: 2.5 }, mode: "loud" }]`);
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      "FE1006 tenants[0].budgets[0].rate.tokens: must be > 0 (hint: perSecond(n), perMinute(n) or perHour(n))",
      "FE1003 tenants[0].budgets[0].burst.tokens: must be integer (hint: tokens(n))",
      'FE1004 tenants[0].budgets[0].mode: must be one of "enforce", "shadow"',
      "3 errors",
    ]);
  });

  it("fails a burst below the cost of a single request of its class with FE2601", async () => {
    // The default $export kick-off costs 10: a bucket of 5 could never admit one.
    const file = policyFile(`[{ id: "exports", classes: ["export"], rate: perMinute(60), burst: tokens(5) }]`);
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      "FE2601 tenants[0].budgets[0].burst: burst 5 is less than the 10 cost tokens of an $export kick-off: the budget could never admit it (hint: tokens(10) or more)",
      "1 error",
    ]);
  });

  it("checks a YAML tenant's budget too, naming its file", async () => {
    const yaml = "id: globex\npathPrefix: /globex\nupstream:\n  url: http://127.0.0.1:8103/globex/R4\nissuers: [idp]\nbudgets:\n  - id: searches\n    classes: [search]\n    rate: 60/min\n    burst: 4\n";
    const file = policyFile("[]", { yaml: { "globex.yaml": yaml } });
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(r.lines[0]).toBe(
      "FE2601 tenants[1].budgets[0].burst [tenants/globex.yaml]: burst 4 is less than the 5 cost tokens of a search with _include, _revinclude, a chain or _has: the budget could never admit it (hint: tokens(5) or more)",
    );
  });

  it("reports the other limits rules in the same run", async () => {
    const file = policyFile(`[{ id: "a", rate: perMinute(600) }, { id: "a", rate: perMinute(60) }]`, { limits: `{ store: "redis" }` });
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(r.lines.map((l) => l.replace(/:.*/, ""))).toEqual(["FE2602 tenants[0].budgets[1].id", "FE2603 limits.redis", "2 errors"]);
  });
});
