/**
 * scopes/scope + scopes/permission under LuaJIT (issue #5, request-side scope decisions; the
 * compartment, Bundles and operations come later). Expected decisions follow SMART App
 * Launch 2.x, "Scopes for requesting clinical data": v1 read = rs, write = cud, * = cruds;
 * v2 letters in the order c r u d s; granular constraints in AND; scopes combine as a union.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { r4ResourceTypes } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

const TYPE_SET = Object.fromEntries(r4ResourceTypes().map((t) => [t, true]));

interface Decision {
  allow: boolean;
  via?: string;
  missing?: string;
  granular?: unknown[];
}

interface Case {
  readonly scopes: string;
  readonly interaction: string;
  readonly type: string;
  readonly args?: Record<string, string[]>;
  readonly allow: boolean;
  readonly via?: string;
  readonly missing?: string;
  /** Allowed only by a granular grant (a read then awaits the response check). */
  readonly granular?: boolean;
}

const DECIDE = `function(cases, types)
  local scope = require("scopes.scope")
  local perm = require("scopes.permission")
  local out = {}
  for i, c in ipairs(cases) do
    local p = scope.parseScopes(c.scopes, types, false)
    out[i] = perm.decide(p, c.type, perm.requiredPermission(c.interaction), c.args)
  end
  return out
end`;

async function decideAll(cases: readonly Case[]): Promise<Decision[]> {
  const [r] = await runLua("scopes.scope", DECIDE, [[cases, TYPE_SET]]);
  if (r === undefined || !r.ok) throw new Error(JSON.stringify(r));
  return r.values[0] as Decision[];
}

const READS = ["read", "vread", "history-instance"];
const SEARCHES = ["search-type", "search-compartment", "history-type"];
const INTERACTION_LETTER: Record<string, string> = {
  read: "r", vread: "r", "history-instance": "r",
  "search-type": "s", "search-compartment": "s", "history-type": "s",
  create: "c", update: "u", patch: "u", delete: "d",
};
const V1: Record<string, string> = { read: "rs", write: "cud", "*": "cruds" };

/** Every (context, v1 or v2 permission, interaction) on Observation, expected from the letters. */
function generated(): Case[] {
  const out: Case[] = [];
  const perms = ["read", "write", "*", "c", "r", "u", "d", "s", "rs", "cu", "cruds", "ud"];
  for (const ctx of ["patient", "user", "system"]) {
    for (const perm of perms) {
      const letters = V1[perm] ?? perm;
      for (const interaction of Object.keys(INTERACTION_LETTER)) {
        const need = INTERACTION_LETTER[interaction]!;
        const allow = letters.includes(need);
        out.push({ scopes: `${ctx}/Observation.${perm}`, interaction, type: "Observation", allow, ...(allow ? { via: ctx } : { missing: `${ctx}/Observation.${need}` }) });
      }
    }
  }
  return out;
}

const HAND: Case[] = [
  // Wildcard types, and other types not granted.
  { scopes: "patient/*.rs", interaction: "read", type: "Condition", allow: true, via: "patient" },
  { scopes: "patient/*.read", interaction: "search-type", type: "Encounter", allow: true, via: "patient" },
  { scopes: "patient/Observation.rs", interaction: "read", type: "Condition", allow: false, missing: "patient/Condition.r" },
  { scopes: "user/Patient.r", interaction: "search-type", type: "Patient", allow: false, missing: "user/Patient.s" },
  { scopes: "system/*.cruds", interaction: "delete", type: "Basic", allow: true, via: "system" },
  // Union, strongest context first.
  { scopes: "patient/Observation.r user/Observation.s", interaction: "search-type", type: "Observation", allow: true, via: "user" },
  { scopes: "patient/Observation.rs system/Observation.rs", interaction: "read", type: "Observation", allow: true, via: "system" },
  { scopes: "patient/Observation.c patient/Observation.r", interaction: "create", type: "Observation", allow: true, via: "patient" },
  // Out-of-order, repeated or unknown letters grant nothing (ignored by default).
  { scopes: "patient/Observation.sr", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/Observation.rr", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/Observation.rx", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/Observation.dc", interaction: "create", type: "Observation", allow: false, missing: "patient/Observation.c" },
  { scopes: "patient/Observation.Read", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  // Malformed scopes.
  { scopes: "patient/Observatoin.rs", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/observation.rs", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patients/Observation.rs", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "Observation.rs", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/Observation", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/Observation.", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "   ", interaction: "read", type: "Observation", allow: false, missing: "patient/Observation.r" },
  { scopes: "patient/Observation.read?category=laboratory", interaction: "search-type", type: "Observation", args: { category: ["laboratory"] }, allow: false, missing: "patient/Observation.s" },
  // Non-resource scopes grant no resource access.
  { scopes: "launch/patient openid fhirUser offline_access online_access profile launch", interaction: "read", type: "Patient", allow: false, missing: "patient/Patient.r" },
  // %2F for / (Entra ID).
  { scopes: "patient%2FObservation.rs", interaction: "read", type: "Observation", allow: true, via: "patient" },
  { scopes: "user%2f*.read", interaction: "search-type", type: "Condition", allow: true, via: "user" },
  // Granular: a search must carry every constraint; a read is pending the response check.
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { patient: ["A"], category: ["laboratory"] }, allow: true, via: "patient", granular: true },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { patient: ["A"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { category: ["vital-signs"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { category: ["laboratory,vital-signs"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { "category:not": ["laboratory"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { category: ["laboratory", "vital-signs"] }, allow: true, via: "patient", granular: true },
  { scopes: "patient/Observation.rs?category=laboratory&status=final", interaction: "search-type", type: "Observation", args: { category: ["laboratory"], status: ["final"] }, allow: true, via: "patient", granular: true },
  { scopes: "patient/Observation.rs?category=laboratory&status=final", interaction: "search-type", type: "Observation", args: { category: ["laboratory"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs", interaction: "search-type", type: "Observation", args: { category: ["vital-signs"] }, allow: true, via: "patient", granular: true },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "read", type: "Observation", allow: true, via: "patient", granular: true },
  { scopes: "patient/Observation.rs?category=laboratory", interaction: "create", type: "Observation", allow: false, missing: "patient/Observation.c" },
  { scopes: "patient/Observation.rs?category=laboratory patient/Observation.s", interaction: "search-type", type: "Observation", args: {}, allow: true, via: "patient" },
  { scopes: "patient/Observation.rs?category=laboratory patient/Observation.r", interaction: "read", type: "Observation", allow: true, via: "patient" },
  { scopes: "patient/Observation.rs?category", interaction: "search-type", type: "Observation", args: { category: ["x"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?", interaction: "search-type", type: "Observation", args: {}, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/Observation.rs?a=1&", interaction: "search-type", type: "Observation", args: { a: ["1"] }, allow: false, missing: "patient/Observation.s" },
  { scopes: "patient/*.rs?category=laboratory", interaction: "search-type", type: "Observation", args: { category: ["laboratory"] }, allow: true, via: "patient", granular: true },
];

describe("SMART scope decisions (request side)", () => {
  const cases = [...generated(), ...HAND];

  it(`decide ${cases.length} (scopes, request) cases as SMART App Launch says`, async () => {
    const got = await decideAll(cases);
    cases.forEach((c, i) => {
      const d = got[i]!;
      const label = `${c.scopes} / ${c.interaction} ${c.type} ${JSON.stringify(c.args ?? {})}`;
      expect(d.allow, label).toBe(c.allow);
      if (c.allow) {
        expect(d.via, label).toBe(c.via);
        expect(d.granular !== undefined, label).toBe(c.granular === true);
      } else {
        expect(d.missing, label).toBe(c.missing);
      }
    });
  });

  it("maps interactions to permissions; public ones need none, operations and Bundles are decided elsewhere", async () => {
    const names = [...READS, ...SEARCHES, "search-system", "history-system", "create", "update", "patch", "delete", "capabilities", "smart-configuration", "operation-type", "batch", "transaction", "nonsense"];
    const [r] = await runLua("scopes.permission", "function(names) local out = {} for i, n in ipairs(names) do out[i] = m.requiredPermission(n) end return out end", [[names]]);
    expect(r).toMatchObject({ ok: true, values: [[2, 2, 2, 16, 16, 16, 16, 16, 1, 4, 4, 8, 0, 0, -1, -1, -1, -1]] });
  });
});

describe("unparseable scopes", () => {
  it("are ignored and counted, and the first is remembered for policies that reject such tokens", async () => {
    const fn = "function(s, types, strict) local p = m.parseScopes(s, types, strict) return { ignored = p.ignored, invalid = p.invalid or false, launch = p.launchPatient } end";
    const scopes = "launch/patient patient/Observation.sr patient/Observation.rs user/Foo.read patient/Condition.rs?";
    const got = await runLua("scopes.scope", fn, [[scopes, TYPE_SET, false], [scopes, TYPE_SET, true]]);
    expect(got.map((r) => (r.ok ? r.values[0] : r.error))).toEqual([
      { ignored: 3, invalid: "patient/Observation.sr", launch: true },
      { ignored: 3, invalid: "patient/Observation.sr", launch: true },
    ]);
  });
});

describe("SMART scope parser properties", () => {
  const PARSE = `function(list, types)
    local scope = require("scopes.scope")
    local perm = require("scopes.permission")
    local out = {}
    for i, s in ipairs(list) do
      local ok, p = pcall(scope.parseScopes, s, types, i % 2 == 0)
      if not ok then out[i] = "threw: " .. tostring(p) else
        local row = {}
        for _, t in ipairs({ "Observation", "Patient", "Condition" }) do
          for _, bit in ipairs({ 1, 2, 4, 8, 16 }) do
            row[#row + 1] = perm.decide(p, t, bit, { category = { "laboratory" } }).allow and "1" or "0"
          end
        end
        out[i] = table.concat(row)
      end
    end
    return out
  end`;

  const scopeArb = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc
      .tuple(
        fc.constantFrom("patient", "user", "system", "Patient", "x"),
        fc.constantFrom("/", "%2F", "%2f", "."),
        fc.constantFrom("Observation", "Patient", "*", "Condition", "Foo", ""),
        fc.constantFrom("read", "write", "*", "rs", "cruds", "sr", "c", "ud", "rx", ""),
        fc.constantFrom("", "?category=laboratory", "?", "?a=1&b=2", "?=x", "?category=laboratory&"),
      )
      .map(([c, sep, t, p, q]) => `${c}${sep}${t}.${p}${q}`),
  );

  it("never throws, on random strings and near-miss scopes", async () => {
    const inputs = fc.sample(fc.array(scopeArb, { maxLength: 4 }).map((xs) => xs.join(" ")), 600);
    const [r] = await runLua("scopes.scope", PARSE, [[inputs, TYPE_SET]]);
    expect(r?.ok, JSON.stringify(r)).toBe(true);
    const rows = (r as { values: string[][] }).values[0]!;
    expect(rows.filter((x) => x.startsWith("threw"))).toEqual([]);
  });

  it("gives every scope string the same decisions as its v1-to-v2 rewrite", async () => {
    const v1 = fc
      .tuple(fc.constantFrom("patient", "user", "system"), fc.constantFrom("Observation", "Patient", "*", "Condition"), fc.constantFrom("read", "write", "*", "rs", "cud"))
      .map(([c, t, p]) => `${c}/${t}.${p}`);
    const strings = fc.sample(fc.array(v1, { minLength: 1, maxLength: 4 }).map((xs) => xs.join(" ")), 300);
    const [rw] = await runLua("scopes.scope", "function(list) local out = {} for i, s in ipairs(list) do local parts = {} for w in s:gmatch('[^ ]+') do parts[#parts + 1] = m.toV2(w) end out[i] = table.concat(parts, ' ') end return out end", [[strings]]);
    const rewritten = (rw as { values: string[][] }).values[0]!;
    expect(rewritten.every((s) => !/\.(read|write|\*)( |$)/.test(s))).toBe(true);
    // Duplicates the list by index parity, so both strict and lenient parsing are compared.
    const [a] = await runLua("scopes.scope", PARSE, [[strings.flatMap((s) => [s, s]), TYPE_SET]]);
    const [b] = await runLua("scopes.scope", PARSE, [[rewritten.flatMap((s) => [s, s]), TYPE_SET]]);
    expect((b as { values: unknown[] }).values[0]).toEqual((a as { values: unknown[] }).values[0]);
  });
});
