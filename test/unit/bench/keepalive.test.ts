/**
 * Every bench target allows the same requests per connection: at a fixed rate h2load stops a
 * client whose connection the server closed, so a gateway on nginx's default (1000) would be
 * sent fewer requests than the rate says. The option leaves the default conf untouched.
 */
import { describe, expect, it } from "vitest";
import { lowerPolicy } from "../../../compiler/ir.ts";
import { gatewayConf, type BuildOptions } from "../../../compiler/emit/gateway-conf.ts";
import { printConf } from "../../../nginx/model.ts";
import { KEEPALIVE_REQUESTS } from "../../../bench/targets.ts";

function conf(extra: Partial<BuildOptions>): string {
  const ir = { ...lowerPolicy({ name: "k", tenants: [{ id: "a", pathPrefix: "/a", upstream: { url: "http://127.0.0.1:9/R4" }, anonymous: true }] }), version: "v".repeat(64) };
  return printConf(gatewayConf({ ir, version: ir.version, stateDir: "/s", bundleDir: "/s/b", runtime: { loadModules: [], luaPath: [], luaCpath: [] }, options: { listen: "127.0.0.1:1", admin: "127.0.0.1:2", workers: 1, ...extra } }));
}

describe("keepaliveRequests", () => {
  it("is emitted in the http block only when set", () => {
    expect(conf({})).not.toContain("keepalive_requests");
    expect(conf({ keepaliveRequests: KEEPALIVE_REQUESTS })).toContain(`keepalive_requests ${KEEPALIVE_REQUESTS};`);
  });
});
