/** http/request_id under LuaJIT: the strict X-Request-ID format and W3C traceparent handling. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { luaFirst } from "../../harness/luajit.ts";

const NGINX_ID = "0123456789abcdef0123456789abcdef";

describe("http.request_id", () => {
  it("keeps only 8-128 characters of [A-Za-z0-9._:-] (property, against a regex oracle)", async () => {
    const unit = fc.constantFrom("a", "Z", "7", ".", "_", ":", "-", " ", "\n", "\r", "\u0000", "\"", ";", "\u00e9", "/", "=");
    const ids = [...fc.sample(fc.string({ unit, minLength: 0, maxLength: 140 }), 600), "a".repeat(7), "a".repeat(8), "a".repeat(128), "a".repeat(129)];
    const got = await luaFirst<boolean>("http.request_id", "isValidRequestId", ids.map((s) => [s]));
    ids.forEach((s, i) => expect(got[i], JSON.stringify(s)).toBe(/^[A-Za-z0-9._:-]{8,128}$/.test(s)));
  });

  it("continues a valid client trace with a new parent id, and starts a new trace otherwise", async () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const cases: [string | undefined, string][] = [
      [`00-${trace}-00f067aa0ba902b7-01`, `00-${trace}-${NGINX_ID.slice(0, 16)}-01`],
      [`00-${trace}-00f067aa0ba902b7-00`, `00-${trace}-${NGINX_ID.slice(0, 16)}-00`],
      [undefined, `00-${NGINX_ID}-${NGINX_ID.slice(0, 16)}-01`],
      [`00-${"0".repeat(32)}-00f067aa0ba902b7-01`, `00-${NGINX_ID}-${NGINX_ID.slice(0, 16)}-01`],
      [`00-${trace}-${"0".repeat(16)}-01`, `00-${NGINX_ID}-${NGINX_ID.slice(0, 16)}-01`],
      [`ff-${trace}-00f067aa0ba902b7-01`, `00-${NGINX_ID}-${NGINX_ID.slice(0, 16)}-01`],
      [`00-${trace.toUpperCase()}-00f067aa0ba902b7-01`, `00-${NGINX_ID}-${NGINX_ID.slice(0, 16)}-01`],
      [`00-${trace}-00f067aa0ba902b7-01-extra`, `00-${NGINX_ID}-${NGINX_ID.slice(0, 16)}-01`],
    ];
    const got = await luaFirst<string>("http.request_id", "nextTraceparent", cases.map(([tp]) => [tp, NGINX_ID]));
    cases.forEach(([tp, want], i) => expect(got[i], String(tp)).toBe(want));
  });
});
