import { describe, expect, it } from "vitest";
import { bootstrap, BootstrapError, DEBIAN_PACKAGES, findRuntime, installCommand } from "../../../compiler/runtime.ts";

describe("runtime", () => {
  it("never installs the luajit package, which conflicts with luajit2", () => {
    expect(DEBIAN_PACKAGES).toContain("luajit2");
    expect(DEBIAN_PACKAGES).not.toContain("luajit");
    expect(installCommand(["nginx", "wrk"])).toBe("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx wrk");
  });

  it("loads ndk before the lua module on Debian", () => {
    const r = findRuntime();
    if (r.kind === "debian") expect(r.loadModules.map((m) => m.split("/").pop())).toEqual(["ndk_http_module.so", "ngx_http_lua_module.so"]);
    else expect(r.loadModules).toEqual([]);
  });

  it("checks presence quickly and without side effects when install is off", () => {
    const t = performance.now();
    try {
      const r = bootstrap({ install: false });
      expect(r.installed).toBe(false);
      expect(r.missing).toEqual([]);
    } catch (e) {
      // On a machine without the runtime the error must carry the exact command.
      expect(e).toBeInstanceOf(BootstrapError);
      expect((e as Error).message).toContain("apt-get install -y --no-install-recommends");
    }
    expect(performance.now() - t).toBeLessThan(1000);
  });
});
