import { describe, expect, it } from "vitest";
import { headerName } from "../../../../compiler/checks/header-name.ts";
import { policy, tenant } from "../policy-builders.ts";

describe("FE2401 header-name", () => {
  it("accepts token header names everywhere one is configured", () => {
    const p = policy([tenant("a")], { resolution: { header: "X-Tenant" }, requestId: { header: "X-Correlation-ID" }, stripHeaders: ["X-Internal", "x_legacy"] });
    expect(headerName.check(p)).toEqual([]);
  });

  it("reports each bad name at its own path", () => {
    const p = policy([tenant("a")], { resolution: { header: "X Tenant" }, requestId: { header: "" }, stripHeaders: ["ok", "bad:name", "x".repeat(129)] });
    expect(headerName.check(p).map((d) => d.path)).toEqual(["resolution.header", "requestId.header", "stripHeaders[1]", "stripHeaders[2]"]);
  });
});
