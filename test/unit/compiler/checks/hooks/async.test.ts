import { describe, expect, it } from "vitest";
import { hookAsync } from "../../../../../compiler/checks/hooks/async.ts";
import { hookSource, lines } from "./source.ts";

describe("FE2902 hook-async", () => {
  it("accepts a hook that returns its verdict directly", () => {
    expect(hookAsync.check(hookSource("export function onRequest(): undefined { return undefined; }\n"))).toEqual([]);
  });

  it("reports async functions, await, generators and Promises at their lines", () => {
    const sf = hookSource(
      [
        "export async function onRequest(): Promise<undefined> {",
        "  await 1;",
        "  return undefined;",
        "}",
        "export function* steps(): Generator<number> { yield 1; }",
        "export const later = (): unknown => Promise.resolve(1);",
      ].join("\n"),
    );
    const ds = hookAsync.check(sf);
    expect(lines(ds)).toEqual([
      "FE2902 ward.hooks.ts:1:1: an async function",
      "FE2902 ward.hooks.ts:1:36: a Promise",
      "FE2902 ward.hooks.ts:2:3: an await",
      "FE2902 ward.hooks.ts:5:1: a generator function",
      "FE2902 ward.hooks.ts:6:37: a Promise",
    ]);
    expect(ds[0]?.hint).toBe("a hook returns its verdict directly: no async, await, generators or Promises");
  });
});
