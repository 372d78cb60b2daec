import { describe, expect, it } from "vitest";
import { unknownInteraction } from "../../../../compiler/checks/unknown-interaction.ts";
import type { Interaction } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const withInteractions = (interactions: string[]) => policy([tenant("a", { routes: [{ id: "r", match: { interactions: interactions as Interaction[] } }] })]);

describe("FE2302 unknown-interaction", () => {
  it("accepts every documented interaction", () => {
    expect(unknownInteraction.check(withInteractions(["read", "search-type", "operation-instance", "smart-configuration"]))).toEqual([]);
  });

  it("rejects unknown names and suggests the near one", () => {
    const ds = unknownInteraction.check(withInteractions(["search", "reed", "explode"]));
    expect(ds.map((d) => d.path)).toEqual(["tenants[0].routes[0].match.interactions[0]", "tenants[0].routes[0].match.interactions[1]", "tenants[0].routes[0].match.interactions[2]"]);
    expect(ds[1]?.hint).toBe('did you mean "read"?');
    expect(ds[2]?.hint).toContain("one of read, vread");
  });
});
