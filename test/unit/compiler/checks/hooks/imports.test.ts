import { describe, expect, it } from "vitest";
import { hookImports } from "../../../../../compiler/checks/hooks/imports.ts";
import { hookSource, lines } from "./source.ts";

describe("FE2901 hook-imports", () => {
  it("accepts the hook API, types and values", () => {
    const sf = hookSource('import type { RequestView, Verdict } from "fhir-edge/hooks";\nexport function onRequest(r: RequestView): Verdict { return r.cost > 5 ? { deny: "costly" } : undefined; }\n');
    expect(hookImports.check(sf)).toEqual([]);
  });

  it("reports every other import, re-export, require and import() at its line", () => {
    const sf = hookSource(
      [
        'import type { RequestView } from "fhir-edge/hooks";',
        'import { readFileSync } from "node:fs";',
        'export { x } from "./helpers.ts";',
        "export function onRequest(r: RequestView): undefined {",
        '  const m = require("http");',
        '  void import("./late.ts");',
        "  return undefined;",
        "}",
      ].join("\n"),
    );
    const ds = hookImports.check(sf);
    expect(lines(ds)).toEqual([
      'FE2901 ward.hooks.ts:2:1: imports "node:fs": a hook may import only "fhir-edge/hooks"',
      'FE2901 ward.hooks.ts:3:1: re-exports "./helpers.ts": a hook may import only "fhir-edge/hooks"',
      "FE2901 ward.hooks.ts:5:13: a require(): a hook may import only the hook API, statically",
      "FE2901 ward.hooks.ts:6:8: a dynamic import(): a hook may import only the hook API, statically",
    ]);
    expect(ds[0]?.hint).toBe('import only from "fhir-edge/hooks"; a hook\'s helpers live in the same file');
  });
});
