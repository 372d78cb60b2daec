/**
 * Header names the gateway accepts: letters, digits and `-` (issue #16).
 *
 * nginx by default drops any other header silently (`ignore_invalid_headers on`), so a client
 * that sent `X_Tenant_Id` or `Authorization_` never learns it was not heard. The conf turns
 * that off and this check refuses such a request with a 400 instead. It reads the parsed
 * headers through the same lua-nginx-module FFI calls resty.core's ngx.req.get_headers uses,
 * but looks at the names in nginx's memory, so no Lua string is made per header (a JWT's
 * Authorization value alone is over a kilobyte). Names with spaces or control characters
 * never get here: nginx answers those with a 400 itself (phases/errors).
 */
import * as ffi from "ffi";
import * as base from "resty.core.base";
// resty.core.request declares the FFI types and functions below (loaded by resty.core).
import "resty.core.request";

interface FfiStr {
  readonly len: number;
  readonly data: LuaTable<number, number>;
}
interface TableElt {
  readonly key: FfiStr;
}
ffi.cdef("size_t strspn(const char *s, const char *accept);");

interface LuaNgx {
  strspn(this: void, s: LuaTable<number, number>, accept: string): number;
  ngx_http_lua_ffi_req_get_headers_count(this: void, r: ffi.CData, max: number, truncated: ffi.CData): number;
  ngx_http_lua_ffi_req_get_headers(this: void, r: ffi.CData, out: ffi.CData, count: number, raw: number): number;
}

const C = ffi.C as LuaNgx;
/** nginx's own bound on headers handed to Lua; more is refused like a bad name. */
export const MAX_HEADERS = 100;
const eltArray = ffi.typeof("ngx_http_lua_ffi_table_elt_t[?]");
const buf = eltArray(MAX_HEADERS) as unknown as LuaTable<number, TableElt>;
const truncated = ffi.typeof("int[1]")();

/**
 * The bytes a name may hold. strspn stops at the first other byte, and nginx ends every name
 * in its buffer with `:` or NUL, neither of which is here, so it never reads past the name.
 */
const NAME_BYTES = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-";

/** Undefined when every header name is plain; "name" or "count" otherwise. */
export function checkHeaderNames(): "name" | "count" | undefined {
  const r = base.get_request();
  if (r === undefined) return undefined;
  const n = C.ngx_http_lua_ffi_req_get_headers_count(r, MAX_HEADERS, truncated);
  if ((truncated as unknown as LuaTable<number, number>).get(0) !== 0) return "count";
  if (n <= 0) return undefined;
  if (C.ngx_http_lua_ffi_req_get_headers(r, buf as unknown as ffi.CData, n, 1) !== 0) return undefined;
  for (let i = 0; i < n; i++) {
    const key = buf.get(i).key;
    if (C.strspn(key.data, NAME_BYTES) < key.len) return "name";
  }
  return undefined;
}
