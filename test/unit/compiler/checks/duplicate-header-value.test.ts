import { describe, expect, it } from "vitest";
import { duplicateHeaderValue } from "../../../../compiler/checks/duplicate-header-value.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2104 duplicate-header-value", () => {
  it("accepts distinct values and tenants without one", () => {
    expect(duplicateHeaderValue.check(policy([tenant("a", { headerValue: "a" }), tenant("b", { headerValue: "b" }), tenant("c")]))).toEqual([]);
  });

  it("reports a value that selects two tenants", () => {
    const ds = duplicateHeaderValue.check(policy([tenant("a", { headerValue: "x" }), tenant("b", { headerValue: "x" })]));
    expect(ds.map((d) => `${d.code} ${d.path}`)).toEqual(["FE2104 tenants[1].headerValue"]);
  });
});
