import { existsSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildBundle } from "../../../compiler/bundle.ts";
import { activate, down, reload, rollback, status, up } from "../../../compiler/control.ts";
import { findRuntime } from "../../../compiler/runtime.ts";
import { tempProject, TWO_TENANTS, type TempProject } from "./temp-project.ts";

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

let project: TempProject | undefined;
afterEach(async () => {
  if (project !== undefined) {
    await down({ stateDir: project.stateDir, timeoutMs: 5000 });
    project.cleanup();
  }
  project = undefined;
});

describe.skipIf(!existsSync(findRuntime().nginx))("up / reload / rollback / down", () => {
  it("switches versions under a running nginx and refuses a bad policy", async () => {
    project = tempProject();
    const p = project;
    const options = { listen: `127.0.0.1:${await freePort()}`, admin: `127.0.0.1:${await freePort()}`, workers: 1 };
    const params = { policyFile: p.policyFile, stateDir: p.stateDir, repoRoot: p.repoRoot, options };
    p.writePolicy(TWO_TENANTS);
    const first = await buildBundle(params);
    expect(first.diagnostics).toEqual([]);
    activate(p.stateDir, first.version as string);
    await up({ stateDir: p.stateDir });
    expect(status({ stateDir: p.stateDir })).toMatchObject({ running: true, current: first.version, previous: undefined });

    p.writePolicy(TWO_TENANTS.replace('name: "t"', 'name: "t2"'));
    const second = await reload(params);
    expect(second.ok).toBe(true);
    const v2 = second.build.version as string;
    expect(status({ stateDir: p.stateDir })).toMatchObject({ current: v2, previous: first.version });
    const health = (await (await fetch(`http://${options.admin}/healthz`)).json()) as { version: string };
    expect(health.version).toBe(v2);

    p.writePolicy(TWO_TENANTS.replace('"/globex"', '"/acme"'));
    const bad = await reload(params);
    expect(bad.ok).toBe(false);
    expect(bad.build.diagnostics.map((d) => d.code)).toEqual(["FE2101"]);
    expect(status({ stateDir: p.stateDir })).toMatchObject({ running: true, current: v2 });

    const back = await rollback({ stateDir: p.stateDir });
    expect(back).toEqual({ version: first.version, previous: v2, signalled: true });
    const after = (await (await fetch(`http://${options.admin}/healthz`)).json()) as { version: string };
    expect(after.version).toBe(first.version);

    expect(await down({ stateDir: p.stateDir })).toBe(true);
    expect(status({ stateDir: p.stateDir }).running).toBe(false);
    expect(readFileSync(path.join(p.stateDir, "logs", "error.log"), "utf8")).not.toMatch(/\[(error|crit|alert|emerg)\]/);
  }, 60_000);
});
