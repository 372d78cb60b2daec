import { describe, expect, it } from "vitest";
import { duplicateHost } from "../../../../compiler/checks/duplicate-host.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2103 duplicate-host", () => {
  it("accepts distinct hosts", () => {
    expect(duplicateHost.check(policy([tenant("a", { hosts: ["a.example.org"] }), tenant("b", { hosts: ["b.example.org"] })]))).toEqual([]);
  });

  it("compares host names case-insensitively, across and within tenants", () => {
    const ds = duplicateHost.check(policy([tenant("a", { hosts: ["API.example.org", "api.example.org"] }), tenant("b", { hosts: ["api.EXAMPLE.org"] })]));
    expect(ds.map((d) => d.path)).toEqual(["tenants[0].hosts[1]", "tenants[1].hosts[0]"]);
    expect(ds[1]?.message).toBe('duplicates tenants[0].hosts[0] "api.example.org"');
  });
});
