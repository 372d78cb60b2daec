import { describe, expect, it } from "vitest";
import { hookIo } from "../../../../../compiler/checks/hooks/io.ts";
import { hookSource, lines } from "./source.ts";

describe("FE2903 hook-io", () => {
  it("accepts properties and locals that share a global's name", () => {
    const sf = hookSource(["type R = { readonly fetch: string; readonly io: number };", "export function onRequest(r: R): string { const os = r.io; return r.fetch + String(os); }", "export const cfg = { process: 1 } as const;"].join("\n"));
    expect(hookIo.check(sf)).toEqual([]);
  });

  it("reports network, eval, timers, the process and declared Lua globals at their lines", () => {
    const sf = hookSource(
      [
        "declare const io: { open(f: string): unknown };",
        "export function onRequest(): unknown {",
        '  void fetch("http://x");',
        '  eval("1");',
        "  setTimeout(() => undefined, 1);",
        "  return [process.env, io.open(\"/etc/passwd\"), globalThis];",
        "}",
      ].join("\n"),
    );
    const ds = hookIo.check(sf);
    expect(lines(ds)).toEqual([
      "FE2903 ward.hooks.ts:1:1: a declare: it names something the hook API does not give a hook",
      "FE2903 ward.hooks.ts:3:8: uses fetch (network)",
      "FE2903 ward.hooks.ts:4:3: uses eval (code from a string)",
      "FE2903 ward.hooks.ts:5:3: uses setTimeout (a timer)",
      "FE2903 ward.hooks.ts:6:11: uses process (the process)",
      "FE2903 ward.hooks.ts:6:24: uses io (the filesystem)",
      "FE2903 ward.hooks.ts:6:48: uses globalThis (the global scope)",
    ]);
    expect(ds[1]?.hint).toBe("a hook decides from the request view alone; anything it needs goes in the policy or the hook API");
  });
});
