import { Project } from "ts-morph";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./temp-project.ts";

/** Type-checks in-memory policy sources against the real DSL, as an operator's editor would. */
function typeErrors(body: string): string[] {
  const project = new Project({ tsConfigFilePath: path.join(REPO, "tsconfig.json"), skipAddingFilesFromTsConfig: true });
  const file = project.createSourceFile(path.join(REPO, "examples", `__virtual_${process.pid}.policy.ts`), `import { definePolicy, seconds, megabytes } from "fhir-edge";\nvoid seconds; void megabytes;\nexport default definePolicy(${body});\n`);
  return file.getPreEmitDiagnostics().map((d) => {
    const m = d.getMessageText();
    return typeof m === "string" ? m : m.getMessageText();
  });
}

describe("the policy DSL types", () => {
  it("accept a full policy", () => {
    expect(
      typeErrors(`{
        name: "p",
        resolution: { order: ["host", "path"], header: "X-Tenant" },
        tenants: [{ id: "a", pathPrefix: "/a", hosts: ["a.test"], upstream: { url: "http://u", readTimeout: seconds(5) },
                    routes: [{ id: "r", match: { interactions: ["search-type"], resourceTypes: ["Observation"], operations: ["$export"] }, action: "deny", cost: 8 }] }],
        stripHeaders: ["X-Internal"],
        limits: { maxBody: megabytes(16) },
        metrics: { maxSeries: 100 },
      }`),
    ).toEqual([]);
  }, 30_000);

  it("reject a misspelt property, a bare number for a duration and an unknown interaction", () => {
    const errors = typeErrors(`{
      name: "p",
      tenants: [{ id: "a", pathPrefx: "/a", upstream: { url: "http://u", readTimeout: 30 },
                  routes: [{ id: "r", match: { interactions: ["serch-type"] } }] }],
    }`);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.join("\n")).toMatch(/pathPrefx|readTimeout|serch-type/);
  }, 30_000);
});
