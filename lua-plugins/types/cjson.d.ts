/** lua-cjson's safe module: errors come back as values, never raised. */
declare module "cjson.safe" {
  /** @noSelf */
  export function encode(value: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  /** @noSelf */
  export function decode(text: string): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  // Debian's lua-cjson 2.1.0 lacks OpenResty's encode_empty_table_as_object and empty_array.
}
