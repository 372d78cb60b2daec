/**
 * The lint that keeps JS truthiness out of lua-plugins. It runs the project's own ESLint config
 * (only pointed at a fixture tsconfig), so weakening the config fails this test.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ESLint, type Linter } from "eslint";
import { describe, expect, it } from "vitest";
import projectConfig from "../../../eslint.config.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const FIXTURES = path.join(import.meta.dirname, "fixtures");
const FIXTURE = path.join(FIXTURES, "truthiness.ts");

describe("strict boolean lint on lua-plugins", () => {
  it("reports number, string and nullable-string conditions, and accepts explicit ones", async () => {
    const config = (projectConfig as Linter.Config[]).map((c) => ({
      ...c,
      files: ["test/unit/lint/fixtures/**/*.ts"],
      languageOptions: { ...c.languageOptions, parserOptions: { project: path.join(FIXTURES, "tsconfig.json"), tsconfigRootDir: FIXTURES } },
    }));
    const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: true, overrideConfig: config });
    const [result] = await eslint.lintFiles([FIXTURE]);
    const lines = readFileSync(FIXTURE, "utf8").split("\n");
    const expected = lines.flatMap((l, i) => (l.includes("// BAD") ? [i + 1] : []));
    const reported = [...new Set((result?.messages ?? []).filter((m) => m.ruleId === "@typescript-eslint/strict-boolean-expressions").map((m) => m.line))];
    expect(result?.messages.filter((m) => m.fatal === true)).toEqual([]);
    expect(reported.sort((a, b) => a - b)).toEqual(expected);
  });
});
