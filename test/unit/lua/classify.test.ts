/**
 * fhir/classify under LuaJIT: table cases for every interaction, and properties over all R4
 * types and random ids, in one luajit process per batch.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { r4ResourceTypes } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const TYPES = r4ResourceTypes();
const TYPE_SET = Object.fromEntries(TYPES.map((t) => [t, true]));

interface Classification {
  interaction: string;
  resource_type?: string;
  id?: string;
  version_id?: string;
  operation?: string;
  compartment_type?: string;
  cost: number;
  public: boolean;
}

async function classify(cases: readonly (readonly [string, string])[]): Promise<(Classification | string)[]> {
  const results = await runLua("fhir.classify", "classify", cases.map(([m, p]) => [m, p, TYPE_SET]));
  return results.map((r, i) => {
    if (!r.ok) throw new Error(`classify(${JSON.stringify(cases[i])}) raised ${r.error}`);
    return (r.values[0] as Classification | undefined) ?? (r.values[1] as string);
  });
}

describe("fhir.classify", () => {
  it("names each FHIR interaction", async () => {
    const table: [string, string, Partial<Classification> | string][] = [
      ["GET", "", { interaction: "search-system" }],
      ["POST", "", { interaction: "batch" }],
      ["GET", "/metadata", { interaction: "capabilities", public: true }],
      ["GET", "/.well-known/smart-configuration", { interaction: "smart-configuration", public: true }],
      ["GET", "/Patient", { interaction: "search-type", resource_type: "Patient", public: false }],
      ["POST", "/Patient/_search", { interaction: "search-type", resource_type: "Patient" }],
      ["POST", "/Patient", { interaction: "create", resource_type: "Patient" }],
      ["GET", "/Patient/123", { interaction: "read", resource_type: "Patient", id: "123" }],
      ["PUT", "/Patient/123", { interaction: "update", id: "123" }],
      ["PATCH", "/Patient/123", { interaction: "patch" }],
      ["DELETE", "/Patient/123", { interaction: "delete" }],
      ["GET", "/Patient/123/_history", { interaction: "history-instance" }],
      ["GET", "/Patient/123/_history/4", { interaction: "vread", version_id: "4" }],
      ["GET", "/Patient/_history", { interaction: "history-type" }],
      ["GET", "/_history", { interaction: "history-system" }],
      ["POST", "/$export", { interaction: "operation-system", operation: "$export" }],
      ["GET", "/Patient/$export", { interaction: "operation-type", operation: "$export" }],
      ["GET", "/Patient/123/$everything", { interaction: "operation-instance", operation: "$everything", id: "123" }],
      ["GET", "/Patient/123/Observation", { interaction: "search-compartment", compartment_type: "Observation" }],
      ["GET", "/Pateint", "unknown_type"],
      ["GET", "/Patient/12_3", "bad_id"],
      ["GET", "/Patient/$ex port", "bad_operation"],
      ["TRACE", "/Patient", "method"],
      ["POST", "/Patient/123", "method"],
      ["GET", "/metadata/x", "not_found"],
      ["GET", "/Patient//1", "bad_path"],
      ["GET", "/Patient/1/", "bad_path"],
      ["GET", "/a/b/c/d/e/f", "bad_path"],
    ];
    const got = await classify(table.map(([m, p]) => [m, p]));
    table.forEach(([m, p, want], i) => {
      if (typeof want === "string") expect(got[i], `${m} ${p}`).toBe(want);
      else expect(got[i], `${m} ${p}`).toMatchObject(want);
    });
  });

  it("classifies /<Type>/<id>/_history/<vid> as vread for every R4 type and any valid id", async () => {
    const id = fc.stringMatching(/^[A-Za-z0-9.-]{1,64}$/).filter((s) => s !== "." && s !== "..");
    const cases = fc.sample(fc.tuple(fc.constantFrom(...TYPES), id, id), 600);
    const got = await classify(cases.map(([t, i, v]) => ["GET", `/${t}/${i}/_history/${v}`]));
    cases.forEach(([t, i, v], k) => expect(got[k], `${t}/${i}/_history/${v}`).toMatchObject({ interaction: "vread", resource_type: t, id: i, version_id: v }));
  });

  it("rejects every capitalised name that is not an R4 type", async () => {
    const known = new Set(TYPES);
    const names = fc.sample(fc.stringMatching(/^[A-Z][A-Za-z]{0,30}$/).filter((s) => !known.has(s)), 400);
    const got = await classify(names.map((n) => ["GET", `/${n}`]));
    for (const g of got) expect(g).toBe("unknown_type");
  });

  it("never throws, whatever the path", async () => {
    const paths = fc.sample(fc.string({ unit: fc.constantFrom("/", "a", "P", "$", "_", ".", "1", "-", "Patient", "_history", "metadata") , maxLength: 40 }), 500);
    const results = await runLua("fhir.classify", "classify", paths.map((p) => ["GET", p, TYPE_SET]));
    for (const r of results) expect(r.ok).toBe(true);
  });
});
