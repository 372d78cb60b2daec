/**
 * routing/tenant under LuaJIT: resolution precedence (claim > host > path > header by default,
 * or the policy's order), host normalisation, and the FHIR base check that stops a silent
 * tenant switch.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { luaFirst, runLua } from "../../harness/luajit.ts";

const tenant = (id: string, extra: Record<string, unknown>) => ({
  id,
  hosts: [] as string[],
  path_prefix: null,
  header_value: null,
  fhir_base: "/fhir",
  fhir_versions: [] as string[],
  ...extra,
});

const POLICY = {
  resolution: { order: ["claim", "host", "path", "header"], header: "X-Tenant", claim: "tenant" },
  tenants: [
    tenant("acme", { path_prefix: "/acme", fhir_versions: ["R4"] }),
    tenant("acme-eu", { path_prefix: "/acme-eu" }),
    tenant("hosty", { hosts: ["hosty.test"] }),
    tenant("heady", { header_value: "heady" }),
  ],
};

// claim, host, path, header -> tenant id and mode, then the FHIR path under its base.
const RESOLVE = `function(policy, claim, host, path, header)
  local idx = m.buildIndex(policy)
  local t, mode = m.resolve(idx, claim, m.normalizeHost(host), path, header)
  if t == nil then return nil end
  return t.id .. " " .. mode .. " " .. tostring(m.fhirPath(t, mode, path))
end`;

const resolve = (cases: readonly (readonly unknown[])[]) => luaFirst<string | undefined>("routing.tenant", RESOLVE, cases.map((c) => [POLICY, ...c]));

describe("routing.tenant", () => {
  it("applies claim > host > path > header, and strips prefix, base and version", async () => {
    const got = await resolve([
      ["heady", "hosty.test", "/fhir/Patient", "heady"],
      [undefined, "hosty.test:8080", "/fhir/Patient", "heady"],
      [undefined, "127.0.0.1", "/acme/fhir/R4/Patient/1", "heady"],
      [undefined, "127.0.0.1", "/acme-eu/fhir/Patient", undefined],
      [undefined, "127.0.0.1", "/fhir/Patient", "heady"],
      [undefined, "127.0.0.1", "/acmex/fhir/Patient", undefined],
      [undefined, "HOSTY.TEST", "/fhir/metadata", undefined],
    ]);
    expect(got).toEqual([
      "heady claim /Patient",
      "hosty host /Patient",
      "acme path /Patient/1",
      "acme-eu path /Patient",
      "heady header /Patient",
      undefined,
      "hosty host /metadata",
    ]);
  });

  it("never switches tenant: the path must sit under the chosen tenant's base", async () => {
    const got = await resolve([[undefined, "hosty.test", "/acme/fhir/Patient", undefined]]);
    expect(got).toEqual(["hosty host nil"]);
  });

  it("a higher-precedence signal always wins (property over random combinations)", async () => {
    const cases = fc.sample(
      fc.record({
        claim: fc.option(fc.constantFrom("acme", "heady", "nobody"), { nil: undefined }),
        host: fc.option(fc.constantFrom("hosty.test", "other.test"), { nil: undefined }),
        path: fc.constantFrom("/acme/fhir/Patient", "/acme-eu/fhir/Patient", "/fhir/Patient", "/zzz/fhir"),
        header: fc.option(fc.constantFrom("heady", "nope"), { nil: undefined }),
      }),
      300,
    );
    const got = await resolve(cases.map((c) => [c.claim, c.host, c.path, c.header]));
    cases.forEach((c, i) => {
      const oracle =
        c.claim === "acme" || c.claim === "heady" ? `${c.claim} claim` :
        c.host === "hosty.test" ? "hosty host" :
        c.path.startsWith("/acme-eu/") ? "acme-eu path" :
        c.path.startsWith("/acme/") ? "acme path" :
        c.header === "heady" ? "heady header" : undefined;
      if (oracle === undefined) expect(got[i], JSON.stringify(c)).toBeUndefined();
      else expect(got[i]?.startsWith(`${oracle} `), `${JSON.stringify(c)} -> ${String(got[i])}`).toBe(true);
    });
  });

  it("follows the policy's own order", async () => {
    const headerFirst = { ...POLICY, resolution: { ...POLICY.resolution, order: ["header", "path"] } };
    const got = await luaFirst<string>("routing.tenant", RESOLVE, [[headerFirst, "acme", "hosty.test", "/acme/fhir/Patient", "heady"]]);
    expect(got).toEqual(["heady header nil"]);
  });

  it("refuses malformed Host values", async () => {
    const rs = await runLua("routing.tenant", "normalizeHost", [["Ok.Example:443"], ["bad_host"], ["a/b"], ["x:y"], [""], [undefined]]);
    expect(rs.map((r) => (r.ok ? r.values[0] : r.error))).toEqual(["ok.example", undefined, undefined, undefined, undefined, undefined]);
  });
});

describe("routing.tenant path prefixes of several segments", () => {
  const nested = (prefixes: string[]) => ({
    resolution: { order: ["path"], header: "X-Tenant", claim: "tenant" },
    tenants: prefixes.map((p, i) => tenant(`t${i}`, { path_prefix: p })),
  });
  const RESOLVE_ID = `function(policy, path)
    local t = m.resolve(m.buildIndex(policy), nil, nil, path, nil)
    return t and t.id
  end`;

  it("picks the longest whole-segment prefix, up to three segments without a loop and deeper with one", async () => {
    const shallow = nested(["/a", "/a/b", "/x/y/z", "/ab"]);
    const deep = nested(["/a", "/a/b/c/d"]);
    const cases: [object, string, string | undefined][] = [
      [shallow, "/a/fhir/Patient", "t0"],
      [shallow, "/a/b/fhir/Patient", "t1"],
      [shallow, "/a/bc/fhir", "t0"],
      [shallow, "/ab/fhir", "t3"],
      [shallow, "/x/y/z/fhir", "t2"],
      [shallow, "/x/y/fhir", undefined],
      [shallow, "/a", "t0"],
      [shallow, "/", undefined],
      [deep, "/a/b/c/d/fhir", "t1"],
      [deep, "/a/b/c/fhir", "t0"],
    ];
    const got = await luaFirst<string | undefined>("routing.tenant", RESOLVE_ID, cases.map(([p, path]) => [p, path]));
    cases.forEach(([, path, want], i) => expect(got[i], path).toBe(want));
  });
});
