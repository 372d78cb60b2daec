import { describe, expect, it } from "vitest";
import { operationName } from "../../../../compiler/checks/operation-name.ts";
import { policy, tenant } from "../policy-builders.ts";

const withOps = (operations: string[]) => policy([tenant("a", { routes: [{ id: "r", match: { operations } }] })]);

describe("FE2304 operation-name", () => {
  it("accepts $-prefixed names", () => {
    expect(operationName.check(withOps(["$export", "$everything", "$validate-code", "$lastn"]))).toEqual([]);
  });

  it("rejects a missing $ with the fix as hint, and junk after it", () => {
    const ds = operationName.check(withOps(["export", "$", "$ex port"]));
    expect(ds.map((d) => d.path)).toEqual(["tenants[0].routes[0].match.operations[0]", "tenants[0].routes[0].match.operations[1]", "tenants[0].routes[0].match.operations[2]"]);
    expect(ds[0]?.hint).toBe('write "$export"');
  });
});
