import { describe, expect, it } from "vitest";
import { unknownResourceType } from "../../../../compiler/checks/unknown-resource-type.ts";
import { policy, tenant } from "../policy-builders.ts";

const withTypes = (resourceTypes: string[]) => policy([tenant("a", { routes: [{ id: "r", match: { resourceTypes } }] })]);

describe("FE2301 unknown-resource-type", () => {
  it("accepts R4 resource types", () => {
    expect(unknownResourceType.check(withTypes(["Patient", "Observation", "MedicationRequest", "Bundle"]))).toEqual([]);
  });

  it("rejects unknown and wrongly cased names with a suggestion", () => {
    const ds = unknownResourceType.check(withTypes(["Patient", "patient", "Observaton", "Frobnicator"]));
    expect(ds.map((d) => d.path)).toEqual(["tenants[0].routes[0].match.resourceTypes[1]", "tenants[0].routes[0].match.resourceTypes[2]", "tenants[0].routes[0].match.resourceTypes[3]"]);
    expect(ds[0]?.hint).toBe('did you mean "Patient"?');
    expect(ds[1]?.hint).toBe('did you mean "Observation"?');
    expect(ds[2]?.hint).not.toContain("did you mean");
  });

  it("rejects abstract types, which no request can name", () => {
    expect(unknownResourceType.check(withTypes(["DomainResource", "Resource"]))).toHaveLength(2);
  });
});
