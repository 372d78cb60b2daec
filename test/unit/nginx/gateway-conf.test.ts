import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lowerPolicy } from "../../../compiler/ir.ts";
import { findRuntime } from "../../../compiler/runtime.ts";
import { gatewayConf, type ConfRuntime } from "../../../compiler/emit/gateway-conf.ts";
import { printConf } from "../../../nginx/model.ts";
import { megabytes, seconds, type PolicyInput } from "../../../policy-dsl/index.ts";

const POLICY: PolicyInput = {
  name: "snapshot",
  tenants: [
    { id: "acme", pathPrefix: "/acme", upstream: { url: "http://127.0.0.1:8103/acme/R4", connectTimeout: seconds(1), readTimeout: seconds(60) }, anonymous: true, cache: { ttl: { ValueSet: seconds(300), Observation: seconds(30) }, notFoundTtl: seconds(10), stale: true } },
    { id: "globex", hosts: ["globex.example.org"], upstream: { url: "https://fhir.globex.example:8443", keepalive: 0, readTimeout: seconds(30) }, issuers: ["local", "corp"] },
  ],
  issuers: [
    { id: "local", issuer: "http://127.0.0.1:8104", audiences: ["https://fhir"], mode: "jwt" },
    {
      id: "corp",
      issuer: "https://idp.globex.example/realms/fhir",
      audiences: ["fhir-api"],
      mode: "auto",
      timeout: seconds(2),
      introspection: { clientId: "gateway", clientSecretEnv: "CORP_INTROSPECTION_SECRET" },
      tls: { ca: "/etc/ssl/certs/ca-certificates.crt" },
    },
  ],
  limits: { maxBody: megabytes(4) },
};

const DEBIAN: ConfRuntime = {
  loadModules: ["/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"],
  luaPath: ["/usr/share/lua/5.1/?.lua", "/usr/share/lua/5.1/?/init.lua"],
  luaCpath: ["/usr/lib/x86_64-linux-gnu/lua/5.1/?.so"],
};

function conf(stateDir: string, runtime: ConfRuntime, listen = "127.0.0.1:8080", admin = "127.0.0.1:9145"): string {
  const ir = { ...lowerPolicy(POLICY), version: "v".repeat(64) };
  return printConf(gatewayConf({ ir, version: ir.version, stateDir, bundleDir: `${stateDir}/bundles/${ir.version}`, runtime, options: { listen, admin, workers: 1 } }));
}

let tmp: string | undefined;
afterEach(() => {
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

describe("gateway nginx.conf", () => {
  it("matches the snapshot", () => {
    expect(conf("/var/lib/fhir-edge", DEBIAN)).toMatchSnapshot();
  });

  it("loads no modules on OpenResty and keeps the default Lua path", () => {
    const text = conf("/s", { loadModules: [], luaPath: [], luaCpath: [] });
    expect(text).not.toContain("load_module");
    expect(text).toContain(`lua_package_path "/s/bundles/${"v".repeat(64)}/lua/?.lua;/s/bundles/${"v".repeat(64)}/lua/?/init.lua;;";`);
  });

  const runtime = findRuntime();
  it.skipIf(!existsSync(runtime.nginx))("passes nginx -t with a stub init module", () => {
    tmp = mkdtempSync(path.join(tmpdir(), "fhir-edge-conf-"));
    const version = "v".repeat(64);
    const bundle = path.join(tmp, "bundles", version);
    mkdirSync(path.join(bundle, "lua", "phases"), { recursive: true });
    for (const d of ["logs", "run", "tmp"]) mkdirSync(path.join(tmp, d));
    // nginx -t runs init_by_lua, so the module it requires must exist.
    writeFileSync(path.join(bundle, "lua", "phases", "init.lua"), "return { init = function() end, init_worker = function() end }\n");
    writeFileSync(path.join(bundle, "nginx.conf"), conf(tmp, runtime, "127.0.0.1:18080", "127.0.0.1:19145").replaceAll("fhir.globex.example", "127.0.0.1").replaceAll("idp.globex.example", "127.0.0.1"));
    // -t parses and resolves but binds nothing, so fixed ports cannot clash.
    const r = spawnSync(runtime.nginx, ["-t", "-p", `${tmp}/`, "-c", path.join(bundle, "nginx.conf"), "-e", path.join(tmp, "logs", "error.log")], { encoding: "utf8" });
    expect(`${r.stdout}${r.stderr}`).toContain("test is successful");
    expect(r.status).toBe(0);
  });
});
