/**
 * The LuaJIT FFI as a module (`require("ffi")`; it is not a global in LuaJIT), typed for what
 * the plugins use. It is declared as an object so `typeof` and `new` can be member names. C
 * namespaces are typed per library by the modules that bind them.
 */
declare module "ffi" {
  namespace ffi {
    /** An opaque C value (pointer, array, struct). */
    interface CData {
      readonly __cdata: unique symbol;
    }
    /** A C type; calling it allocates an instance. */
    type CType = (this: void, nelem?: number) => CData;
    interface Api {
      cdef(this: void, defs: string): void;
      load(this: void, name: string, global?: boolean): unknown;
      /** The default C namespace (symbols of the process, nginx's libcrypto among them). */
      readonly C: unknown;
      typeof(this: void, ct: string): CType;
      string(this: void, ptr: CData, len?: number): string;
      gc(this: void, cdata: CData, finalizer: ((this: void, cd: CData) => void) | undefined): CData;
      cast(this: void, ct: CType | string, value: unknown): CData;
      copy(this: void, dst: CData, src: string, len: number): void;
      sizeof(this: void, ct: CType | CData | string): number;
      /** errno of the last C call. */
      errno(this: void): number;
    }
  }
  const ffi: ffi.Api;
  export = ffi;
}

/** resty.core's base module: the current request as FFI cdata (nginx only). */
declare module "resty.core.base" {
  /** @noSelf */
  export function get_request(): import("ffi").CData | undefined;
}

/** Loaded for its FFI declarations (ngx_http_lua_ffi_table_elt_t and the request calls). */
declare module "resty.core.request" {}
