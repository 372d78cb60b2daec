import { describe, expect, it } from "vitest";
import { hookModuleState } from "../../../../../compiler/checks/hooks/state.ts";
import { hookSource, lines } from "./source.ts";

describe("FE2904 hook-module-state", () => {
  it("accepts primitive consts, literals as const, functions and locals", () => {
    const sf = hookSource(
      [
        "const LIMIT = 5;",
        'const WARDS = ["w7", "w8"] as const;',
        "const RULES = { night: { from: 22, to: 6 } } as const;",
        "const twice = (n: number): number => n * 2;",
        "export function onRequest(): number { let n = LIMIT; n = twice(n); return n + WARDS.length + RULES.night.from; }",
      ].join("\n"),
    );
    expect(hookModuleState.check(sf)).toEqual([]);
  });

  it("reports let, var, mutable consts and static fields at their lines", () => {
    const sf = hookSource(
      [
        "let seen = 0;",
        "var last = \"\";",
        "const cache = new Map<string, number>();",
        "const list = [1, 2];",
        "const nested = [new Map()] as const;",
        "class Counter { static n = 0; }",
        "export function onRequest(): number { seen += 1; last = String(seen); return cache.size + list.length + nested.length + Counter.n; }",
      ].join("\n"),
    );
    const ds = hookModuleState.check(sf);
    expect(lines(ds)).toEqual([
      "FE2904 ward.hooks.ts:1:5: module-level let seen: state that outlives the request",
      "FE2904 ward.hooks.ts:2:5: module-level var last: state that outlives the request",
      "FE2904 ward.hooks.ts:3:7: module-level const cache holds a value a hook can change",
      "FE2904 ward.hooks.ts:4:7: module-level const list holds a value a hook can change",
      "FE2904 ward.hooks.ts:5:7: module-level const nested holds a value a hook can change",
      "FE2904 ward.hooks.ts:6:1: class Counter has static fields: state that outlives the request",
    ]);
    expect(ds[2]?.hint).toBe("make it a primitive, or a literal with `as const`");
  });
});
