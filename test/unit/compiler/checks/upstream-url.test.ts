import { describe, expect, it } from "vitest";
import { upstreamUrl } from "../../../../compiler/checks/upstream-url.ts";
import { policy, tenant } from "../policy-builders.ts";

const withUrl = (url: string) => policy([tenant("a", { upstream: { url } })]);

describe("FE2201 upstream-url", () => {
  it.each(["http://127.0.0.1:8103/acme/R4", "https://fhir.example.org", "http://[::1]:8080/fhir/", "http://upstream"])("accepts %s", (url) => {
    expect(upstreamUrl.check(withUrl(url))).toEqual([]);
  });

  it.each([
    ["not a url", "is not a URL"],
    ["ftp://host/fhir", "scheme"],
    ["http://user:pw@host/fhir", "credentials"],
    ["http://host/fhir?x=1", "query"],
    ["http://host:0/fhir", "port 0"],
    ["http://host:70000/fhir", "is not a URL"],
    ["http://host/fh{ir", "characters"],
  ])("rejects %s", (url, fragment) => {
    const ds = upstreamUrl.check(withUrl(url));
    expect(ds).toHaveLength(1);
    expect(ds[0]?.path).toBe("tenants[0].upstream.url");
    expect(ds[0]?.message).toContain(fragment);
  });
});
