import { describe, expect, it } from "vitest";
import { blank, block, comment, d, lua, printConf, quoteArg } from "../../../nginx/model.ts";

describe("nginx conf model", () => {
  it("quotes only what needs quoting", () => {
    expect(quoteArg("/usr/lib/x.so")).toBe("/usr/lib/x.so");
    expect(quoteArg("$scheme://$host$uri")).toBe("$scheme://$host$uri");
    expect(quoteArg("")).toBe('""');
    expect(quoteArg("a b;c")).toBe('"a b;c"');
    expect(quoteArg('say "hi" \\')).toBe('"say \\"hi\\" \\\\"');
    expect(quoteArg(8)).toBe("8");
    expect(() => quoteArg("a\nb")).toThrow();
  });

  it("prints directives, nested blocks, Lua blocks and comments", () => {
    const text = printConf([
      comment("generated"),
      d("worker_processes", 1),
      blank,
      block("http", [], [block("location", ["=", "/x"], [lua("content_by_lua_block", 'ngx.say("{}")'), lua("log_by_lua_block", "local a = 1\nif a then\n  a = 2\nend")])]),
    ]);
    expect(text).toBe(
      [
        "# generated",
        "worker_processes 1;",
        "",
        "http {",
        "    location = /x {",
        '        content_by_lua_block { ngx.say("{}") }',
        "        log_by_lua_block {",
        "            local a = 1",
        "            if a then",
        "              a = 2",
        "            end",
        "        }",
        "    }",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("refuses names and Lua that would break the conf", () => {
    expect(() => printConf([d("bad name")])).toThrow();
    expect(() => printConf([lua("content_by_lua_block", "x = '}'")])).toThrow(/unbalanced/);
  });
});
