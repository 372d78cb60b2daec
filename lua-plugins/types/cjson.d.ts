/** lua-cjson's safe module: errors come back as values, never raised. */
declare module "cjson.safe" {
  /** @noSelf */
  export function encode(value: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  /** @noSelf */
  export function decode(text: string): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  /** An independent instance, with its own settings. */
  /** @noSelf */
  function create(): CjsonInstance;
  export { create as new };
  /** @noSelf */
  export interface CjsonInstance {
    decode(text: string): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
    /** Nesting deeper than this is a decode error. */
    decode_max_depth(depth: number): number;
    /** false: hex, `Infinity` and `NaN` are decode errors, as JSON says. */
    decode_invalid_numbers(allow: boolean): boolean;
  }
  // Debian's lua-cjson 2.1.0 lacks OpenResty's encode_empty_table_as_object and empty_array.
}
