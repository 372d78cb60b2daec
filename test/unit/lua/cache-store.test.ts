/**
 * cache/store under LuaJIT: which upstream responses the cache may store, by every
 * Cache-Control header (one or several, as nginx's header table gives them) and by the
 * Content-Type nginx sends. A fixed table, then a property against an oracle.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { luaFirst } from "../../harness/luajit.ts";

const PRIVATE = ["no-store", "private", "no-cache"];

function oraclePrivate(cc: string | string[] | undefined): boolean {
  const values = cc === undefined ? [] : typeof cc === "string" ? [cc] : cc;
  return values.some((v) => v.toLowerCase().split(",").some((p) => PRIVATE.includes((/^\s*([A-Za-z0-9-]+)/.exec(p)?.[1] ?? "").toLowerCase())));
}

describe("cache/store", () => {
  it("keeps out a response any of whose Cache-Control headers says no-store, private or no-cache", async () => {
    const cases: [string | string[] | undefined, boolean][] = [
      [undefined, false],
      ["public, max-age=60", false],
      ["no-store", true],
      ["max-age=600, private", true],
      ["Private", true],
      ['no-cache="set-cookie"', true],
      ["private,max-age=0", true],
      ["s-maxage=10, must-revalidate", false],
      ["no-transform", false],
      ["x-private-thing", false],
      [["public", "private"], true],
      [["max-age=5", "must-revalidate"], false],
      [["public", "max-age=1", "no-store"], true],
    ];
    const got = await luaFirst<boolean>("cache.store", "isPrivate", cases.map(([v]) => [v]));
    expect(got).toEqual(cases.map(([, want]) => want));
  });

  it("agrees with the oracle on generated Cache-Control headers", async () => {
    const directive = fc.oneof(fc.constantFrom(...PRIVATE, "public", "max-age=60", "must-revalidate", "no-transform", "immutable", "s-maxage=1"), fc.stringMatching(/^[a-z-]{1,12}(=[0-9]{1,3})?$/));
    const value = fc.array(directive, { minLength: 1, maxLength: 4 }).chain((ds) => fc.constantFrom(", ", ",", " ,  ").map((sep) => ds.join(sep)));
    const input = fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 3 }));
    const cases = fc.sample(input, 10_000);
    const got = await luaFirst<boolean>("cache.store", "isPrivate", cases.map((c) => [c]));
    cases.forEach((c, i) => expect(got[i], JSON.stringify(c)).toBe(oraclePrivate(c)));
  });

  it("stores FHIR JSON and XML, with parameters, and no other type", async () => {
    const ok = ["application/fhir+json", "application/fhir+json; charset=utf-8", "APPLICATION/FHIR+XML", "application/json", "application/json+fhir;fhirVersion=4.0", "application/xml+fhir", " application/fhir+json "];
    const no = [undefined, "text/html", "application/xml", "text/plain", "", "application/fhir+jsonx", "application/octet-stream", "multipart/form-data", "application/fhir+json-seq"];
    const got = await luaFirst<boolean>("cache.store", "isStoredType", [...ok, ...no].map((v) => [v]));
    expect(got).toEqual([...ok.map(() => true), ...no.map(() => false)]);
  });
});
