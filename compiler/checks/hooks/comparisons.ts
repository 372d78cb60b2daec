import path from "node:path";
import { Linter } from "eslint";
import tseslint from "typescript-eslint";
import type { SourceFile } from "ts-morph";
import { diag, type Diagnostic } from "../../diagnostics.ts";
import type { HookCheck } from "./types.ts";

/**
 * Explicit comparisons, as in lua-plugins (eslint.config.js): in Lua, 0 and "" are true, so a
 * JS-style truthiness test in a hook compiles to a condition that is always taken. The same
 * typed rule, typescript-eslint's strict-boolean-expressions with the same options, run on the
 * hook's program.
 */
const RULES: Linter.RulesRecord = {
  "@typescript-eslint/strict-boolean-expressions": [
    "error",
    { allowString: false, allowNumber: false, allowNullableObject: true, allowNullableBoolean: false, allowNullableString: false, allowNullableNumber: false, allowAny: false },
  ],
  eqeqeq: "error",
};

export const hookComparisons: HookCheck = {
  code: "FE2905",
  name: "hook-comparisons",
  check(sf: SourceFile) {
    const program = sf.getProject().getProgram().compilerObject;
    const file = sf.getFilePath();
    // Patterns are matched against paths under cwd; the hook may be anywhere.
    const linter = new Linter({ configType: "flat", cwd: path.parse(file).root });
    const config: Linter.Config[] = [
      {
        files: ["**/*.ts"],
        languageOptions: { parser: tseslint.parser as Linter.Parser, parserOptions: { programs: [program] } },
        plugins: { "@typescript-eslint": tseslint.plugin as unknown as NonNullable<Linter.Config["plugins"]>[string] },
        rules: RULES,
      },
    ];
    const messages = linter.verify(sf.getFullText(), config, { filename: file });
    return messages.map((m): Diagnostic =>
      m.ruleId === null
        ? diag("FE2905", `${file}:${m.line}:${m.column}`, `the comparison lint could not run: ${m.message}`, "fix the syntax error first")
        : diag("FE2905", `${file}:${m.line}:${m.column}`, m.message, "compare explicitly (x !== undefined, s !== \"\", n > 0): in Lua, 0 and \"\" are true"),
    );
  },
};
