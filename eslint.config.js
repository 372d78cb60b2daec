// Lints the Lua runtime sources. In Lua, 0 and "" are true, so a JS-style truthiness test in
// lua-plugins compiles to a condition that is always taken: every condition must be explicit.
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    files: ["lua-plugins/**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: "./tsconfig.lua.json", tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      "@typescript-eslint/strict-boolean-expressions": [
        "error",
        {
          allowString: false,
          allowNumber: false,
          allowNullableObject: true,
          allowNullableBoolean: false,
          allowNullableString: false,
          allowNullableNumber: false,
          allowAny: false,
        },
      ],
      eqeqeq: "error",
    },
  },
);
