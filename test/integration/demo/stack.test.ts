/**
 * `npm start` as a user runs it (the same script, on free ports and its own state dir): the
 * printed curl line returns a searchset through the gateway with the RateLimit headers of the
 * demo's budgets, the README's loop provokes a 429, its cache lines show X-Cache MISS then HIT,
 * the audit trail lands in its file sink and, as AuditEvents, in the upstream's audit base
 * (searchable by patient and date), the demo CLI talks to the running stack,
 * and Ctrl-C leaves no process and no listener behind.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../../harness/cli.ts";
import { freePort } from "../../harness/ports.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const state = mkdtempSync(path.join(tmpdir(), "fhir-edge-demo-"));
afterAll(() => rmSync(state, { recursive: true, force: true }));

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

describe("npm start", () => {
  it("brings the stack up, its curl line returns a searchset, and Ctrl-C stops everything", async () => {
    const [gw, admin, up, az] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const child = spawn(
      path.join(ROOT, "node_modules/.bin/tsx"),
      ["demo/stack.ts", "--listen", `127.0.0.1:${gw}`, "--admin", `127.0.0.1:${admin}`, "--upstream-port", String(up), "--authz-port", String(az), "--state", state],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const deadline = Date.now() + 45_000;
      while (!out.includes("Ctrl-C stops everything") && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain("Ctrl-C stops everything");

      const curl = out.split("\n").find((l) => l.trim().startsWith("curl "));
      expect(curl).toBeDefined();
      const m = /-H '([^']+)' '([^']+)'/.exec(curl ?? "");
      expect(m?.[2]).toBe(`http://127.0.0.1:${gw}/acme/fhir/Observation?patient=acme-p1`);
      const r = spawnSync("curl", ["-s", "-H", m?.[1] ?? "", m?.[2] ?? ""], { encoding: "utf8" });
      const bundle = JSON.parse(r.stdout) as { resourceType: string; type: string; entry: unknown[] };
      expect(bundle).toMatchObject({ resourceType: "Bundle", type: "searchset" });
      expect(bundle.entry.length).toBeGreaterThan(0);
      // The example policy's budgets: acme's tightest after one search of 3 tokens is per-client.
      const head = spawnSync("curl", ["-s", "-o", "/dev/null", "-D", "-", "-H", m?.[1] ?? "", m?.[2] ?? ""], { encoding: "utf8" }).stdout;
      expect(head).toMatch(/^ratelimit-policy: "per-client";q=120;w=12\r$/im);
      expect(head).toMatch(/^ratelimit: "per-client";r=11[0-9];t=[0-9]+\r$/im);

      // The README's one command that provokes a 429, as printed there (on this run's port).
      const loop = readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").find((l) => l.startsWith("for i in 1 2 3 4; do curl"));
      expect(loop).toBeDefined();
      const globex = await runCli(["demo", "token", "--tenant", "globex", "--scope", "user/*.rs", "--state", state]);
      expect(globex.code).toBe(0);
      const lines = spawnSync("sh", ["-c", (loop ?? "").replaceAll("127.0.0.1:8080", `127.0.0.1:${gw}`)], { encoding: "utf8", env: { ...process.env, TOKEN: globex.stdout.trim() } }).stdout.trim().split("\n");
      // 30 tokens at once, 8 per Observation search, 2 back a second: a slow machine may see one
      // token refilled between two requests, never the 2 more the fourth would need.
      expect(lines).toHaveLength(4);
      expect(lines[0]).toMatch(/^200 "searches";r=2[23];t=[34] retry-after=$/);
      expect(lines[1]).toMatch(/^200 "searches";r=1[45];t=[78] retry-after=$/);
      expect(lines[2]).toMatch(/^200 "searches";r=[67];t=1[12] retry-after=$/);
      expect(lines[3]).toMatch(/^429 "searches";r=[67];t=1[12] retry-after=1$/);

      // The README's cache lines: a patient's search and a tenant-wide ValueSet, each twice.
      const cacheLoop = readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").find((l) => l.startsWith('for u in "Observation?patient=$PATIENT&_count=5"'));
      expect(cacheLoop).toBeDefined();
      const acme = await runCli(["demo", "token", "--tenant", "acme", "--scope", "patient/*.rs launch/patient", "--patient", "acme-p1", "--state", state]);
      const cached = spawnSync("sh", ["-c", (cacheLoop ?? "").replaceAll("127.0.0.1:8080", `127.0.0.1:${gw}`)], { encoding: "utf8", env: { ...process.env, TOKEN: acme.stdout.trim(), PATIENT: "acme-p1" } }).stdout.trim().split("\n");
      expect(cached).toEqual([
        "200 x-cache=MISS Observation?patient=acme-p1&_count=5",
        "200 x-cache=HIT Observation?patient=acme-p1&_count=5",
        "200 x-cache=MISS ValueSet/observation-category",
        "200 x-cache=HIT ValueSet/observation-category",
      ]);

      // The README's break-glass lines, as printed there: a 403 without the reason, a 200 with it,
      // and an event that says so.
      const readme = readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n");
      const glassToken = readme.find((l) => l.startsWith('TOKEN=$(npx fhir-edge demo token --tenant acme --scope "user/Observation.rs break-glass")'));
      const glassCurls = readme.filter((l) => l.startsWith("curl ") && l.includes("Condition?patient=$PATIENT"));
      expect(glassToken).toBeDefined();
      expect(glassCurls).toHaveLength(2);
      const practitioner = await runCli(["demo", "token", "--tenant", "acme", "--scope", "user/Observation.rs break-glass", "--state", state]);
      expect(practitioner.code).toBe(0);
      const glass = glassCurls.map((c) => spawnSync("sh", ["-c", c.replaceAll("127.0.0.1:8080", `127.0.0.1:${gw}`)], { encoding: "utf8", env: { ...process.env, TOKEN: practitioner.stdout.trim(), PATIENT: "acme-p1" } }).stdout.trim());
      expect(glass).toEqual(["403", "200"]);

      // The audit trail: the printed places hold this run's events. The FHIR sink's AuditEvents
      // are in the upstream's audit base, searchable by patient and by date.
      const auditLine = out.split("\n").find((l) => l.trim().startsWith("audit "));
      expect(auditLine).toContain(path.join(state, "audit", "file", "audit.jsonl"));
      expect(auditLine).toContain(`npx fhir-edge verify-audit --state ${state}`);
      const auditBase = `http://127.0.0.1:${up}/audit/R4`;
      expect(out).toContain(`${auditBase}/AuditEvent`);
      const day = new Date().toISOString().slice(0, 10);
      let found = 0;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline && found < 3; ) {
        await new Promise((r) => setTimeout(r, 250));
        const b = (await (await fetch(`${auditBase}/AuditEvent?patient=Patient/acme-p1&date=ge${day}&_count=100`)).json()) as { entry?: unknown[] };
        found = b.entry?.length ?? 0;
      }
      // The curl line's search, the two cache-loop searches and two of the ValueSet reads at least: a patient's own trail.
      expect(found).toBeGreaterThanOrEqual(3);
      const other = (await (await fetch(`${auditBase}/AuditEvent?patient=Patient/globex-p1`)).json()) as { entry?: unknown[] };
      expect(other.entry ?? []).toHaveLength(0);
      const exported = readFileSync(path.join(state, "audit", "file", "audit.jsonl"), "utf8").split("\n").filter((l) => l.startsWith('{"v":1'));
      expect(exported.length).toBeGreaterThanOrEqual(8);
      const broke = exported.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e["break_glass"] === true);
      expect(broke.map((e) => [e["resource_type"], e["break_glass_reason"], e["status"]])).toEqual([["Condition", "emergency", 200]]);
      // The printed command holds on the running stack: spool, export and, once an idle worker
      // has signed its last seal (checkpointInterval, 10 s), checkpoints.
      let verified = await runCli(["verify-audit", "--state", state]);
      for (const deadline = Date.now() + 15_000; Date.now() < deadline && / 0 checkpoint MAC/.test(verified.stdout); ) {
        await new Promise((r) => setTimeout(r, 1000));
        verified = await runCli(["verify-audit", "--state", state]);
      }
      expect(verified.stdout + verified.stderr).toMatch(/^ok: 0 finding\(s\), [1-9]\d* checkpoint MAC\(s\) checked with /m);
      expect(verified.stdout).toMatch(/^export .*audit\/file: \d+ stream\(s\), \d+ seal\(s\), [1-9]\d* event/m);
      expect(verified.code).toBe(0);

      const patients = await runCli(["demo", "patients", "--tenant", "globex", "--state", state]);
      expect(patients.code).toBe(0);
      expect(patients.stdout.trim().split("\n")).toEqual(["globex-p1", "globex-p2", "globex-p3", "globex-p4", "globex-p5"]);
      const token = await runCli(["demo", "token", "--tenant", "acme", "--scope", "patient/*.rs", "--patient", "acme-p1", "--opaque", "--state", state]);
      expect(token.code).toBe(0);
      expect(token.stdout).toMatch(/^[A-Za-z0-9_-]{20,}\n$/);
      const bad = await runCli(["demo", "token", "--tenant", "initech", "--scope", "patient/*.rs", "--state", state]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe("");
      expect(bad.stderr).toContain("unknown tenant");
    } finally {
      child.kill("SIGINT");
      await new Promise((r) => child.once("exit", r));
    }
    for (const port of [gw, admin, up, az]) expect(await listening(port)).toBe(false);
    const nginx = spawnSync("pgrep", ["-f", `nginx.*${state}`], { encoding: "utf8" });
    expect(nginx.stdout.trim()).toBe("");
    const after = await runCli(["demo", "patients", "--tenant", "acme", "--state", state]);
    expect(after.stderr).toContain("npm start");
    // And once it has stopped: the workers' close seals are in the spool, not yet shipped.
    const stopped = await runCli(["verify-audit", "--state", state]);
    expect(stopped.stdout).toMatch(/^ok: 0 finding/m);
    expect(stopped.code).toBe(0);
  }, 90_000);
});
