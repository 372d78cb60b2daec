import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatDiagnostic } from "../../../compiler/diagnostics.ts";
import { loadPolicy } from "../../../compiler/load.ts";
import { validatePolicy } from "../../../compiler/validate.ts";
import { REPO, tempProject, TWO_TENANTS, type TempProject } from "./temp-project.ts";

let project: TempProject | undefined;
afterEach(() => project?.cleanup());

describe("loadPolicy", () => {
  it("evaluates the example policy, which imports the DSL as the fhir-edge package", async () => {
    const r = await loadPolicy(path.join(REPO, "examples", "gateway.policy.ts"));
    expect(r.diagnostics).toEqual([]);
    expect(validatePolicy(r.raw).diagnostics).toEqual([]);
    expect(r.inputs.map((i) => i.path)).toEqual(["gateway.policy.ts"]);
  });

  it("merges tenants/*.yaml after the policy's own tenants, converting durations", async () => {
    project = tempProject();
    project.writePolicy(TWO_TENANTS);
    project.writeFile("tenants/b-initech.yaml", "id: initech\npathPrefix: /initech\nupstream:\n  url: http://127.0.0.1:8103/initech/R4\n  connectTimeout: 500ms\n  readTimeout: 60000\nanonymous: true\n");
    project.writeFile("tenants/a-hooli.yml", "id: hooli\nhosts: [hooli.example.org]\nupstream: { url: 'http://127.0.0.1:8104', readTimeout: 1.5m }\nanonymous: true\n");
    project.writeFile("tenants/notes.txt", "ignored");
    const r = await loadPolicy(project.policyFile);
    expect(r.diagnostics).toEqual([]);
    const tenants = (r.raw as { tenants: { id: string; upstream: Record<string, unknown> }[] }).tenants;
    expect(tenants.map((t) => t.id)).toEqual(["acme", "globex", "hooli", "initech"]);
    expect(tenants[3]?.upstream).toEqual({ url: "http://127.0.0.1:8103/initech/R4", connectTimeout: { ms: 500 }, readTimeout: { ms: 60_000 } });
    expect(tenants[2]?.upstream["readTimeout"]).toEqual({ ms: 90_000 });
    expect(r.tenantSources).toEqual([undefined, undefined, "tenants/a-hooli.yml", "tenants/b-initech.yaml"]);
    expect(r.inputs.map((i) => i.path)).toEqual(["gateway.policy.ts", "tenants/a-hooli.yml", "tenants/b-initech.yaml"]);
    expect(validatePolicy(r.raw, r.tenantSources).diagnostics).toEqual([]);
  });

  it("lists local modules the policy imports as inputs", async () => {
    project = tempProject();
    project.writeFile("shared/upstreams.ts", 'export const ACME = "http://127.0.0.1:8103/acme/R4";\n');
    project.writePolicy('{ name: "t", tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: ACME }, anonymous: true }] }');
    project.writeFile("gateway.policy.ts", 'import { ACME } from "./shared/upstreams.ts";\n' + (await import("node:fs")).readFileSync(project.policyFile, "utf8"));
    const r = await loadPolicy(project.policyFile);
    expect(r.diagnostics).toEqual([]);
    expect(r.inputs.map((i) => i.path)).toEqual(["gateway.policy.ts", "shared/upstreams.ts"]);
  });

  it("reports YAML syntax and schema errors with their file, and keeps going", async () => {
    project = tempProject();
    project.writePolicy(TWO_TENANTS);
    project.writeFile("tenants/broken.yaml", "id: [unclosed\n");
    project.writeFile("tenants/wrong.yaml", "id: wrong\nupstream: { url: 'http://u', readTimeout: soon }\n");
    const r = await loadPolicy(project.policyFile);
    const lines = r.diagnostics.map(formatDiagnostic);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^FE0004 \[tenants\/broken\.yaml\]: YAML: /);
    expect(lines[1]).toMatch(/^FE1003 tenants\[2\]\.upstream\.readTimeout \[tenants\/wrong\.yaml\]: must be milliseconds/);
  });

  it("reports a missing file, a throwing policy and a missing default export", async () => {
    project = tempProject();
    expect((await loadPolicy(project.policyFile)).diagnostics.map((d) => d.code)).toEqual(["FE0001"]);
    project.writeFile("gateway.policy.ts", 'throw new Error("boom");\nexport default 1;\n');
    const thrown = await loadPolicy(project.policyFile);
    expect(thrown.diagnostics.map((d) => [d.code, d.message])).toEqual([["FE0002", "evaluating gateway.policy.ts failed: boom"]]);
    project.writeFile("gateway.policy.ts", "export const x = 1;\n");
    expect((await loadPolicy(project.policyFile)).diagnostics.map((d) => d.code)).toEqual(["FE0003"]);
  });

  it("sees edits between two loads in one process", async () => {
    project = tempProject();
    project.writePolicy('{ name: "first", tenants: [] }');
    expect(((await loadPolicy(project.policyFile)).raw as { name: string }).name).toBe("first");
    project.writePolicy('{ name: "second", tenants: [] }');
    expect(((await loadPolicy(project.policyFile)).raw as { name: string }).name).toBe("second");
  });
});
