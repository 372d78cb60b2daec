import { describe, expect, it } from "vitest";
import { hookComparisons } from "../../../../../compiler/checks/hooks/comparisons.ts";
import { hookSource } from "./source.ts";

describe("FE2905 hook-comparisons", () => {
  it("accepts explicit comparisons", () => {
    const sf = hookSource('import type { RequestView } from "fhir-edge/hooks";\nexport function onRequest(r: RequestView): boolean { return r.patient !== undefined && r.cost > 0 && r.tenant !== ""; }\n');
    expect(hookComparisons.check(sf)).toEqual([]);
  });

  it("reports truthiness tests of strings, numbers and nullables, and loose equality, at their lines", () => {
    const sf = hookSource(
      [
        'import type { RequestView } from "fhir-edge/hooks";',
        "export function onRequest(r: RequestView): string {",
        '  if (r.patient) return "p";',
        '  if (r.cost) return "c";',
        '  return r.sub == "x" ? "s" : "-";',
        "}",
      ].join("\n"),
    );
    const ds = hookComparisons.check(sf);
    expect(ds.map((d) => [d.code, d.path.replace("/policy/", "")])).toEqual([
      ["FE2905", "ward.hooks.ts:3:7"],
      ["FE2905", "ward.hooks.ts:4:7"],
      ["FE2905", "ward.hooks.ts:5:16"],
    ]);
    expect(ds[0]?.message).toMatch(/nullable string/);
    expect(ds[0]?.hint).toBe('compare explicitly (x !== undefined, s !== "", n > 0): in Lua, 0 and "" are true');
  });
});
