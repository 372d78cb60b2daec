import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { luaModule, luaString, toLua } from "../../../compiler/emit/lua-data.ts";

const LUAJIT = "/usr/bin/luajit";

/** Runs the printed value under LuaJIT and returns what `probe` prints about it (`v` is the value). */
function inLua(src: string, probe: string): string {
  const r = spawnSync(LUAJIT, ["-e", `local v = ${src}\n${probe}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe("lua-data printer", () => {
  it("prints scalars, sequences and records", () => {
    expect(toLua(null)).toBe("nil");
    expect(toLua(true)).toBe("true");
    expect(toLua(42)).toBe("42");
    expect(toLua(1.5)).toBe("1.5");
    expect(toLua([])).toBe("{}");
    expect(toLua({ a: 1, list: ["x"] })).toBe('{\n  a = 1,\n  list = {\n    "x",\n  },\n}');
  });

  it("brackets keys that are not identifiers, and keywords", () => {
    expect(toLua({ "content-type": 1, end: 2, _ok: 3, "1a": 4 })).toBe('{\n  ["content-type"] = 1,\n  ["end"] = 2,\n  _ok = 3,\n  ["1a"] = 4,\n}');
  });

  it("leaves null fields out and refuses holes in sequences", () => {
    expect(toLua({ a: null, b: 1 })).toBe("{\n  b = 1,\n}");
    expect(() => toLua(["a", null, "b"])).toThrow(/array hole at index 1/);
    expect(() => toLua(Number.NaN)).toThrow();
  });

  it("escapes strings so that any input round-trips byte for byte", () => {
    expect(luaString('a"b\\c\n')).toBe('"a\\"b\\\\c\\n"');
    expect(luaString("\u00001")).toBe('"\\0001"');
  });

  it.skipIf(!existsSync(LUAJIT))("is read back by LuaJIT as the same data", () => {
    const nasty = 'q"\\]]\n\r\t\u0000\u0001é€😀 end --[[';
    const src = toLua({ s: nasty, list: [1, 2, 3], nested: { ["a-b"]: true }, skip: null });
    const hex = Buffer.from(nasty, "utf8").toString("hex");
    const out = inLua(src, 'io.write((v.s:gsub(".", function(c) return string.format("%02x", c:byte()) end)), " ", #v.list, " ", tostring(v.nested["a-b"]), " ", tostring(v.skip))');
    expect(out).toBe(`${hex} 3 true nil`);
  });

  it("writes a module with a comment header", () => {
    expect(luaModule({ x: 1 }, "generated\nline two")).toBe("-- generated\n-- line two\nreturn {\n  x = 1,\n}\n");
  });
});
