/**
 * fhir/cost under LuaJIT against an oracle written here from the cost table (issue #11, and the
 * header of lua-plugins/fhir/cost.ts): tables for each row, then properties over generated
 * queries and Bundles. Requests are classified by fhir/classify and Bundles decoded by
 * fhir/json's decodeStrict, as the classify and body steps do.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CostsIR } from "../../../compiler/ir.ts";
import { r4ResourceTypes } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const TYPE_SET = Object.fromEntries(r4ResourceTypes().map((t) => [t, true]));

/** The IR's cost model, as the runtime reads it. */
type Costs = CostsIR;

const DEFAULT: Costs = { read: 1, search: 3, complex_search: 5, count_threshold: 100, count_step: 100, write: 2, export: 10, operation: 5, operations: {} };

// ---- The oracle: the cost table, read as a client and the upstream read a request. ----

type Klass = "read" | "search" | "write" | "export" | "operation";

/** The classes of policy-dsl/constants.ts INTERACTION_CLASSES; a batch is a write that its entries price. */
const CLASS: Record<string, Klass | undefined> = {
  "read": "read", "vread": "read", "history-instance": "read",
  "search-type": "search", "search-system": "search", "search-compartment": "search", "history-type": "search", "history-system": "search",
  "create": "write", "update": "write", "patch": "write", "delete": "write", "batch": "write",
  "operation-system": "operation", "operation-type": "operation", "operation-instance": "operation",
};

function oracleClass(interaction: string, operation: string | undefined): Klass | undefined {
  return operation === "$export" ? "export" : CLASS[interaction];
}

/** What an upstream decodes: every %XX, once. */
const unescape = (s: string): string => s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

function oracleSearch(args: string | undefined, c: Costs): number {
  let complex = false;
  let count = 0;
  for (const part of (args ?? "").split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = unescape(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? "" : unescape(part.slice(eq + 1));
    const base = name.split(":")[0];
    // _include, _revinclude (with :iterate), _has, or a chain (`subject.name`, `subject:Patient.name`).
    if (base === "_include" || base === "_revinclude" || base === "_has" || name.includes(".")) complex = true;
    if (name === "_count" && /^[0-9]+$/.test(value)) count = Math.max(count, Number(value));
  }
  let cost = complex ? c.complex_search : c.search;
  // "plus 1 per extra step": every started step above the threshold.
  for (let over = count - c.count_threshold; over > 0; over -= c.count_step) cost += 1;
  return cost;
}

function oracleRequest(interaction: string, operation: string | undefined, args: string | undefined, c: Costs): number {
  const k = oracleClass(interaction, operation);
  if (k === undefined) return 0;
  if (interaction === "batch") return 0;
  if (k === "search") return oracleSearch(args, c);
  if (k === "export" || k === "operation") return c.operations[operation!] ?? (k === "export" ? c.export : c.operation);
  return c[k];
}

// ---- Runs in LuaJIT ----

const REQUEST = `function(method, path, args, types, costs)
  local c, err = require("fhir.classify").classify(method, path, types)
  if c == nil then error("does not classify: " .. err) end
  return m.requestCost(c, args, costs), m.interactionClass(c), c.interaction
end`;

async function requestCosts(cases: readonly (readonly [string, string, string | undefined, Costs])[]): Promise<{ cost: number; klass: string | undefined; interaction: string }[]> {
  const rs = await runLua("fhir.cost", REQUEST, cases.map(([m, p, a, c]) => [m, p, a, TYPE_SET, c]));
  return rs.map((r, i) => {
    if (!r.ok) throw new Error(`${JSON.stringify(cases[i])} raised ${r.error}`);
    return { cost: r.values[0] as number, klass: r.values[1] as string | undefined, interaction: r.values[2] as string };
  });
}

async function searchCosts(cases: readonly (readonly [string | undefined, Costs])[]): Promise<number[]> {
  const rs = await runLua("fhir.cost", "searchCost", cases);
  return rs.map((r, i) => {
    if (!r.ok) throw new Error(`searchCost(${JSON.stringify(cases[i]?.[0])}) raised ${r.error}`);
    return r.values[0] as number;
  });
}

/** A route for bundleCost's routeCost (kept on the test's tenant): the first whose interaction (and type) matches sets the cost. */
interface RouteCost {
  interaction: string;
  type?: string;
  cost: number;
}

// The body as the body step has it: decodeStrict's table, JSON null as cjson.null.
const BUNDLE = `function(body, types, costs, routes)
  local doc, err = require("fhir.json").decodeStrict(body)
  if doc == nil then error("does not decode: " .. err) end
  local function routeCost(tenant, c)
    for _, r in ipairs(tenant.routes) do
      if r.interaction == c.interaction and (r.type == nil or r.type == c.resource_type) then return r.cost end
    end
    return nil
  end
  return m.bundleCost(doc, types, { id = "t", costs = costs, routes = routes }, routeCost)
end`;

async function bundleCosts(cases: readonly (readonly [unknown, Costs, RouteCost[]])[]): Promise<({ ok: true; cost: number } | { ok: false; error: string })[]> {
  const rs = await runLua("fhir.cost", BUNDLE, cases.map(([doc, c, routes]) => [JSON.stringify(doc), TYPE_SET, c, routes]));
  return rs.map((r) => (r.ok ? { ok: true, cost: r.values[0] as number } : { ok: false, error: r.error }));
}

// ---- Generators ----

/** Percent-encodes some characters of a name, as a client may. */
const encodeSome = (name: string): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom("plain", "plain", "upper", "lower"), { minLength: name.length, maxLength: name.length }).map((how) =>
    [...name].map((ch, i) => {
      const hex = ch.charCodeAt(0).toString(16).padStart(2, "0");
      return how[i] === "upper" ? `%${hex.toUpperCase()}` : how[i] === "lower" ? `%${hex}` : ch;
    }).join(""),
  );

const VALUES = ["1", "Patient/1", "a.b", "", "x%20y", "2020-01-01", "Observation:subject", "a=b", "http://loinc.org|1234-5"];

const param = (c: Costs): fc.Arbitrary<string> => {
  const t = c.count_threshold;
  const s = c.count_step;
  const counts = [0, 1, t - 1, t, t + 1, t + s - 1, t + s, t + s + 1, t + 2 * s + 1, 10 * t].filter((n) => n >= 0).map(String);
  const plainName = fc.constantFrom("patient", "code", "date", "status", "name", "_id", "_lastUpdated", "subject", "_sort", "_summary", "_elements", "_includes", "include", "has", "_hasx");
  const modifier = fc.constantFrom("", "", ":exact", ":missing", ":Patient", ":iterate", ":not");
  const name = fc.oneof(
    fc.tuple(plainName, modifier).map(([n, m]) => n + m),
    fc.constantFrom("_include", "_include:iterate", "_revinclude", "_revinclude:iterate", "_has:Observation:patient:code"),
    fc.constantFrom("subject.name", "subject:Patient.name", "general-practitioner.name", "patient.identifier", "_has:Observation:subject:code"),
  );
  const encodedName = fc.oneof(name, name.chain(encodeSome), fc.constantFrom("%255Finclude", "%5F%5Finclude", "_include%", "%5"));
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(encodedName, fc.constantFrom(...VALUES)).map(([n, v]) => `${n}=${v}`) },
    { weight: 1, arbitrary: encodedName },
    { weight: 3, arbitrary: fc.constantFrom(...counts, "", "abc", "-5").map((v) => `_count=${v}`) },
    { weight: 1, arbitrary: fc.constantFrom(...counts).chain((v) => encodeSome("_count").map((n) => `${n}=${v}`)) },
    { weight: 1, arbitrary: fc.constant("") },
  );
};

const costsArb: fc.Arbitrary<Costs> = fc.record({
  read: fc.integer({ min: 0, max: 20 }),
  search: fc.integer({ min: 0, max: 20 }),
  complex_search: fc.integer({ min: 0, max: 40 }),
  count_threshold: fc.integer({ min: 1, max: 300 }),
  count_step: fc.integer({ min: 1, max: 300 }),
  write: fc.integer({ min: 0, max: 20 }),
  export: fc.integer({ min: 0, max: 100 }),
  operation: fc.integer({ min: 0, max: 50 }),
  operations: fc.constant({}),
});

const queryArb = (c: Costs): fc.Arbitrary<string> =>
  fc.tuple(fc.array(param(c), { maxLength: 8 }), fc.boolean(), fc.boolean()).map(([ps, lead, trail]) => (lead ? "&" : "") + ps.join("&") + (trail ? "&" : ""));

describe("fhir.cost", () => {
  it("prices each row of the cost table, with the class each request spends under", async () => {
    const ops: Costs = { ...DEFAULT, operations: { $everything: 20 } };
    const table: [string, string, string | undefined, Costs, number, string | undefined][] = [
      ["GET", "/Patient/1", undefined, DEFAULT, 1, "read"],
      ["GET", "/Patient/1/_history/2", undefined, DEFAULT, 1, "read"],
      ["GET", "/Patient/1/_history", "_count=500", DEFAULT, 1, "read"],
      ["GET", "/Observation", "patient=1&code=x", DEFAULT, 3, "search"],
      ["GET", "/Observation", undefined, DEFAULT, 3, "search"],
      ["GET", "", "_type=Patient", DEFAULT, 3, "search"],
      ["GET", "/Patient/1/Observation", "_include=Observation:subject", DEFAULT, 5, "search"],
      ["GET", "/Patient/_history", "_count=201", DEFAULT, 5, "search"],
      ["GET", "/_history", undefined, DEFAULT, 3, "search"],
      ["POST", "/Observation/_search", undefined, DEFAULT, 3, "search"],
      ["POST", "/Patient", undefined, DEFAULT, 2, "write"],
      ["PUT", "/Patient/1", undefined, DEFAULT, 2, "write"],
      ["PATCH", "/Patient/1", undefined, DEFAULT, 2, "write"],
      ["DELETE", "/Patient/1", undefined, DEFAULT, 2, "write"],
      ["DELETE", "/Patient", "identifier=x", DEFAULT, 2, "write"],
      // A batch's entries are priced from its body (bundleCost).
      ["POST", "", undefined, DEFAULT, 0, "write"],
      ["GET", "/$export", undefined, DEFAULT, 10, "export"],
      ["GET", "/Patient/$export", undefined, DEFAULT, 10, "export"],
      ["GET", "/Group/1/$export", "_type=Observation", DEFAULT, 10, "export"],
      ["GET", "/Group/1/$export", undefined, { ...DEFAULT, operations: { $export: 30 } }, 30, "export"],
      ["GET", "/Patient/1/$everything", undefined, DEFAULT, 5, "operation"],
      ["GET", "/Patient/1/$everything", "_count=1000", ops, 20, "operation"],
      ["POST", "/Patient/$validate", undefined, ops, 5, "operation"],
      ["GET", "/metadata", undefined, DEFAULT, 0, undefined],
      ["GET", "/.well-known/smart-configuration", undefined, DEFAULT, 0, undefined],
    ];
    const got = await requestCosts(table.map(([m, p, a, c]) => [m, p, a, c]));
    table.forEach(([m, p, a, c, cost, klass], i) => {
      const where = `${m} ${p}${a === undefined ? "" : "?" + a}`;
      expect(got[i], where).toMatchObject({ cost, klass });
      expect(oracleRequest(got[i]!.interaction, p.includes("$") ? p.slice(p.indexOf("$")) : undefined, a, c), `oracle: ${where}`).toBe(cost);
    });
  });

  it("prices the expensive search forms, encoded or not, and the _count surcharge per started step", async () => {
    const table: [string | undefined, number][] = [
      [undefined, 3],
      ["", 3],
      ["name=smith", 3],
      ["name:exact=smith", 3],
      ["subject:Patient=1", 3],
      ["date=2020.01", 3],
      ["_sort=subject.name", 3],
      ["_include=Observation:subject", 5],
      ["_include:iterate=Observation:subject", 5],
      ["_revinclude=Provenance:target", 5],
      ["_revinclude:iterate=Provenance:target", 5],
      ["subject.name=smith", 5],
      ["subject:Patient.name=smith", 5],
      ["_has:Observation:patient:code=1234", 5],
      ["%5Finclude=Observation:subject", 5],
      ["%5finclude=Observation:subject", 5],
      ["_include%3Aiterate=x", 5],
      ["subject%2Ename=smith", 5],
      // Decoded once, as the upstream does: %255F is "%5F", not "_".
      ["%255Finclude=x", 3],
      ["_include", 5],
      ["&&_include&", 5],
      ["_includes=x", 3],
      ["_count=100", 3],
      ["_count=101", 4],
      ["_count=200", 4],
      ["_count=201", 5],
      ["_count=1000", 12],
      ["_count=", 3],
      ["_count", 3],
      ["_count=abc", 3],
      ["_count=10&_count=250", 5],
      ["%5Fcount=250", 5],
      ["_include=x&_count=301", 8],
    ];
    const got = await searchCosts(table.map(([a]) => [a, DEFAULT]));
    table.forEach(([a, want], i) => {
      expect(got[i], String(a)).toBe(want);
      expect(oracleSearch(a, DEFAULT), `oracle: ${String(a)}`).toBe(want);
    });
  });

  it("agrees with the oracle on generated queries and cost models", async () => {
    const seed = Date.now();
    const cases = fc.sample(costsArb.chain((c) => fc.tuple(queryArb(c), fc.constant(c))), { numRuns: 1500, seed });
    const got = await searchCosts(cases);
    cases.forEach(([q, c], i) => expect(got[i], `seed ${seed}: ${JSON.stringify(q)} with ${JSON.stringify(c)}`).toBe(oracleSearch(q, c)));
  });

  // Found by the oracle: cost.ts decoded a parameter's name but not the _count value, and the
  // upstream decodes both: `_count=%31%30%30%30` is a _count of 1000 upstream, and it cost a
  // plain search (3, not 12). Only whole digits count: tonumber would also read "inf" (an
  // infinite cost), "0x400" and "1e3".
  it("charges the surcharge for a percent-encoded _count value, and only for digits", async () => {
    const got = await searchCosts([["_count=%31%30%30%30", DEFAULT], ["_count=2%30%30", DEFAULT], ["_count=inf", DEFAULT], ["_count=0x400", DEFAULT], ["_count=1e3", DEFAULT], ["_count=99999999999", DEFAULT]]);
    expect(got).toEqual([12, 4, 3, 3, 3, 3 + Math.ceil((1e9 - 100) / 100)]);
  });

  describe("bundleCost", () => {
    const entry = (method: unknown, url: unknown): unknown => ({ request: { method, url } });

    it("sums its entries, each priced as its own request or by its route", async () => {
      const ops: Costs = { ...DEFAULT, operations: { $everything: 20 } };
      const routes: RouteCost[] = [{ interaction: "read", type: "Binary", cost: 7 }];
      const table: [unknown, Costs, RouteCost[], number][] = [
        [{ resourceType: "Bundle", type: "batch" }, DEFAULT, [], 0],
        [{ resourceType: "Bundle", type: "batch", entry: [] }, DEFAULT, [], 0],
        [{ entry: [entry("GET", "Patient/1"), entry("GET", "/Patient/2"), entry("GET", "Binary/3")] }, DEFAULT, routes, 1 + 1 + 7],
        [{ entry: [entry("GET", "Observation?patient=1"), entry("GET", "Observation?_include=Observation:subject&_count=201"), entry("GET", "Observation")] }, DEFAULT, [], 3 + 7 + 3],
        [{ entry: [entry("POST", "Patient"), entry("PUT", "Patient/1"), entry("PATCH", "Patient/1"), entry("DELETE", "Patient?identifier=x")] }, DEFAULT, [], 8],
        [{ entry: [entry("GET", "Patient/1/$everything"), entry("GET", "Group/1/$export"), entry("GET", "metadata")] }, ops, [], 20 + 10 + 0],
        // What does not classify is charged a write: the gateway never charges less than it may forward.
        [{ entry: [entry("GET", "Pateint/1"), entry("TRACE", "Patient"), entry("GET", 5), entry(undefined, "Patient/1"), {}, { request: {} }, { resource: { resourceType: "Patient" } }] }, DEFAULT, [], 7 * 2],
        [{ entry: [entry("GET", "Patient/1")] }, { ...DEFAULT, read: 0 }, [], 0],
      ];
      const got = await bundleCosts(table.map(([d, c, r]) => [d, c, r]));
      table.forEach(([doc, , , want], i) => expect(got[i], JSON.stringify(doc)).toEqual({ ok: true, cost: want }));
    });

    it("agrees with the oracle on generated Bundles", async () => {
      type Kind = [method: string, url: string, interaction: string, operation?: string];
      const kinds: Kind[] = [
        ["GET", "Patient/1", "read"],
        ["GET", "Patient/1/_history/2", "vread"],
        ["POST", "Patient", "create"],
        ["PUT", "Patient/1", "update"],
        ["DELETE", "Patient/1", "delete"],
        ["GET", "Patient/1/$everything", "operation-instance", "$everything"],
        ["GET", "Group/1/$export", "operation-instance", "$export"],
        ["GET", "metadata", "capabilities"],
      ];
      const seed = Date.now();
      const search = (c: Costs): fc.Arbitrary<[string, string, string | undefined]> => queryArb(c).map((q) => ["GET", `Observation?${q}`, q]);
      const entryArb = (c: Costs) => fc.oneof(fc.constantFrom(...kinds).map((k): [string, string, string | undefined, Kind | undefined] => [k[0], k[1], undefined, k]), search(c).map(([m, u, q]): [string, string, string | undefined, Kind | undefined] => [m, u, q, undefined]));
      const cases = fc.sample(costsArb.chain((c) => fc.tuple(fc.constant(c), fc.array(entryArb(c), { maxLength: 12 }))), { numRuns: 300, seed });
      const got = await bundleCosts(cases.map(([c, es]) => [{ resourceType: "Bundle", type: "batch", entry: es.map(([m, u]) => entry(m, u)) }, c, []]));
      cases.forEach(([c, es], i) => {
        const want = es.reduce((sum, [, , q, k]) => sum + (k === undefined ? oracleSearch(q, c) : oracleRequest(k[2], k[3], undefined, c)), 0);
        expect(got[i], `seed ${seed}: ${JSON.stringify(es.map((e) => `${e[0]} ${e[1]}`))}`).toEqual({ ok: true, cost: want });
      });
    });

    // decodeStrict gives JSON null as cjson.null, a userdata that cannot be indexed.
    it("charges a write for an entry or a request that is not an object, and does not raise", async () => {
      const got = await bundleCosts([
        [{ resourceType: "Bundle", type: "batch", entry: [null] }, DEFAULT, []],
        [{ resourceType: "Bundle", type: "batch", entry: [5, true] }, DEFAULT, []],
        [{ resourceType: "Bundle", type: "batch", entry: [{ request: null }, { request: 5 }] }, DEFAULT, []],
      ]);
      expect(got).toEqual([{ ok: true, cost: 2 }, { ok: true, cost: 4 }, { ok: true, cost: 4 }]);
    });

    // `POST ""` classifies as a batch, which requestCost prices at 0 (its entries are unknown here).
    it("charges at least a write for an entry that is itself a batch", async () => {
      const got = await bundleCosts([[{ resourceType: "Bundle", type: "batch", entry: [entry("POST", ""), entry("POST", "/")] }, DEFAULT, []]]);
      expect(got[0]).toEqual({ ok: true, cost: 4 });
    });
  });
});
