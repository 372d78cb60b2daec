/** lua-cjson's safe module: errors come back as values, never raised. */
declare module "cjson.safe" {
  /** @noSelf */
  export function encode(value: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  /** @noSelf */
  export function decode(text: string): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  /** @noSelf */
  export function encode_empty_table_as_object(on: boolean): void;
  export const empty_array: unknown;
}
