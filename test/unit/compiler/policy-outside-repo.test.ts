/**
 * A policy kept in its own folder, far from any install of fhir-edge, imports the DSL as
 * `fhir-edge` (as the README shows) and builds with the CLI run from that folder.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../harness/cli.ts";
import { REPO } from "./temp-project.ts";

const POLICY = `import { definePolicy, seconds } from "fhir-edge";

export default definePolicy({
  name: "outside",
  tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: "http://127.0.0.1:8103/acme/R4", readTimeout: seconds(45) }, anonymous: true }],
});
`;
const YAML_TENANT = "id: hooli\npathPrefix: /hooli\nupstream:\n  url: http://127.0.0.1:8103/hooli/R4\n  connectTimeout: 500ms\nanonymous: true\n";

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A folder outside the repository: a policy, a tenant in YAML and, for ESM, a package.json. */
function policyFolder(packageJson: string | undefined): string {
  dir = mkdtempSync(path.join(tmpdir(), "fhir-edge-outside-"));
  expect(path.relative(REPO, dir).startsWith("..")).toBe(true);
  writeFileSync(path.join(dir, "gateway.policy.ts"), POLICY);
  mkdirSync(path.join(dir, "tenants"));
  writeFileSync(path.join(dir, "tenants", "hooli.yaml"), YAML_TENANT);
  if (packageJson !== undefined) writeFileSync(path.join(dir, "package.json"), packageJson);
  return dir;
}

describe("a policy outside the repository", () => {
  // No package.json makes tsx evaluate it as CommonJS; "type": "module" as an ES module.
  it.each([
    ["with no package.json (CommonJS)", undefined],
    ['in a "type": "module" package', '{ "name": "my-gateway", "type": "module" }\n'],
  ])("%s passes check and build, with its tenants/*.yaml merged", async (_name, packageJson) => {
    const folder = policyFolder(packageJson);
    const check = await runCli(["check", "--policy", "gateway.policy.ts"], {}, folder);
    expect(check.stderr).toBe("");
    expect(check.stdout.trim()).toBe("ok: gateway.policy.ts, 2 tenant(s)");
    expect(check.code).toBe(0);

    const build = await runCli(["build", "--policy", "gateway.policy.ts", "--state", "state"], {}, folder);
    expect(build.stderr).toBe("");
    expect(build.code).toBe(0);
    const bundleDir = /^built [0-9a-f]{64} (\S+)$/m.exec(build.stdout)?.[1];
    expect(bundleDir, build.stdout).toBeDefined();
    const manifest = JSON.parse(readFileSync(path.join(bundleDir as string, "manifest.json"), "utf8")) as { inputs: Record<string, string>; ir: { tenants: { id: string }[] } };
    expect(manifest.ir.tenants.map((t) => t.id)).toEqual(["acme", "hooli"]);
    expect(Object.keys(manifest.inputs)).toEqual(["gateway.policy.ts", "tenants/hooli.yaml"]);
  }, 180_000);
});
