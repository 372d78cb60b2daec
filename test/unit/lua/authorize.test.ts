/**
 * The decision table of issue #5: scopes/authorize (and scopes/bundle) under LuaJIT with the
 * generated R4 data, against expectations written from SMART App Launch 2.x:
 * - v1 read = rs, write = cud, * = cruds; v2 letters c r u d s, in that order; anything else
 *   grants nothing;
 * - read, vread, instance history need r; searches need s; create c; update and patch u;
 *   delete d; scopes combine as a union;
 * - patient/ scopes are limited to the patient in context's compartment: a search must name
 *   that patient, a Patient read must be that patient, a read by id of another compartment
 *   type is checked on the response, a create or update must reference the patient in its body
 *   and an update or delete must find the resource already in the compartment (both checked
 *   in the access phase), and a patch is refused;
 * - user/ and system/ scopes have no compartment restriction;
 * - $export needs system/*.rs; other operations are denied by default;
 * - batch/transaction entries are each authorized as their own request.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fhirR4LuaModule, r4ResourceTypes } from "../../../compiler/fhir-data.ts";
import { runLua } from "../../harness/luajit.ts";

let genDir = "";
const TYPES = Object.fromEntries(r4ResourceTypes().map((t) => [t, true]));

afterAll(() => rmSync(genDir, { recursive: true, force: true }));

beforeAll(() => {
  genDir = mkdtempSync(path.join(tmpdir(), "fhir-edge-gen-"));
  mkdirSync(path.join(genDir, "generated"));
  writeFileSync(path.join(genDir, "generated", "fhir_r4.lua"), fhirR4LuaModule("test"));
});

interface Row {
  readonly scopes: string;
  readonly patient?: string;
  readonly method: string;
  readonly url: string;
  readonly expect: string;
  /** The tenant's operation rules (name -> permission letter). */
  readonly ops?: Record<string, string>;
  /** compartmentSearch: "inject". */
  readonly inject?: boolean;
  /** compartmentFor, as the IR has it. */
  readonly compartmentFor?: Record<string, boolean>;
  /** invalidScopes: "reject". */
  readonly rejectInvalid?: boolean;
}

// One Lua run for all rows: classify the request, authorize it, and say what came out.
const RUN = `function(rows, types, gen)
  package.path = gen .. "/?.lua;" .. package.path
  -- Plain LuaJIT has no ngx; the metrics module then counts nothing.
  ngx = ngx or { shared = {} }
  local classify = require("fhir.classify").classify
  local authorize = require("scopes.authorize").authorize
  local authorizeBundle = require("scopes.bundle").authorizeBundle
  local function parseArgs(q)
    local out = {}
    for pair in q:gmatch("[^&]+") do
      local k, v = pair:match("^([^=]+)=(.*)$")
      if k == nil then k, v = pair, true end
      if out[k] == nil then out[k] = v elseif type(out[k]) == "table" then table.insert(out[k], v) else out[k] = { out[k], v } end
    end
    return out
  end
  local toSearchArgs = require("scopes.authorize").toSearchArgs
  local out = {}
  for i, r in ipairs(rows) do
    local id = { issuer = "t", scope = r.scopes, patient = r.patient, exp = 2e9, at = 1e9, via = "jwt", tid = "x" }
    local p, q = r.url:match("^([^?]*)%??(.*)$")
    local c, err = classify(r.method, "/" .. p, types)
    if c == nil then out[i] = "classify:" .. err else
      if c.interaction == "batch" then
        local denied, berr = authorizeBundle(require("cjson.safe").decode(q), id, types, parseArgs, { operations = r.ops }, 100)
        if denied == nil then out[i] = "bundle-error:" .. berr else
          local parts = {}
          for _, d in ipairs(denied) do parts[#parts + 1] = d.index .. "=" .. d.missing end
          out[i] = #parts == 0 and "allow" or ("deny-entries:" .. table.concat(parts, ","))
        end
      else
        local rules = { operations = r.ops, compartment_search = r.inject and "inject" or "refuse", compartment_for = r.compartmentFor, reject_invalid_scopes = r.rejectInvalid }
        local v = authorize(id, c, function() return toSearchArgs(parseArgs(q)) end, rules)
        if v == nil then out[i] = "allow"
        elseif v.response then out[i] = "check" .. (v.patient and ":patient" or "") .. (v.granular and ":granular" or "")
        elseif v.inject then out[i] = "inject:" .. v.inject
        elseif v.write then out[i] = "write" .. (v.body and ":body" or "") .. (v.existing and ":existing" or "")
        else out[i] = "deny:" .. (v.missing or v.reason) end
      end
    end
  end
  return out
end`;

async function run(rows: readonly Row[]): Promise<string[]> {
  // The driver requires its module before the function runs: one without generated imports.
  const [r] = await runLua("scopes.scope", RUN, [[rows, TYPES, genDir]]);
  if (r === undefined || !r.ok) throw new Error(JSON.stringify(r));
  return r.values[0] as string[];
}

const V1: Record<string, string> = { read: "rs", write: "cud", "*": "cruds" };
const V2_OK = /^c?r?u?d?s?$/;
const letters = (perm: string): string => V1[perm] ?? (perm !== "" && V2_OK.test(perm) ? perm : "");

interface Req {
  readonly method: string;
  readonly url: string;
  readonly type: string;
  readonly need: string;
  /** What patient/ scopes add once the permission is there. */
  readonly patientRule: "allow" | "check" | string;
}

const P = "p1";
const Q = "p2";
const REQUESTS: readonly Req[] = [
  { method: "GET", url: `Observation?patient=${P}`, type: "Observation", need: "s", patientRule: "allow" },
  { method: "GET", url: `Observation?subject=Patient/${P}&category=laboratory`, type: "Observation", need: "s", patientRule: "allow" },
  { method: "GET", url: `Observation?patient=${Q}`, type: "Observation", need: "s", patientRule: "deny:compartment_other_patient" },
  { method: "GET", url: `Observation?patient=${P},${Q}`, type: "Observation", need: "s", patientRule: "deny:compartment_other_patient" },
  { method: "GET", url: "Observation", type: "Observation", need: "s", patientRule: "deny:compartment_no_patient" },
  { method: "GET", url: `Observation?subject.name=x`, type: "Observation", need: "s", patientRule: "deny:compartment_chain" },
  { method: "GET", url: "Observation/o1", type: "Observation", need: "r", patientRule: "check" },
  { method: "GET", url: "Observation/o1/_history/2", type: "Observation", need: "r", patientRule: "check" },
  { method: "POST", url: "Observation", type: "Observation", need: "c", patientRule: "write:body" },
  { method: "PUT", url: "Observation/o1", type: "Observation", need: "u", patientRule: "write:body:existing" },
  { method: "PATCH", url: "Observation/o1", type: "Observation", need: "u", patientRule: "deny:compartment_patch" },
  { method: "DELETE", url: "Observation/o1", type: "Observation", need: "d", patientRule: "write:existing" },
  { method: "GET", url: `Patient/${P}`, type: "Patient", need: "r", patientRule: "allow" },
  { method: "GET", url: `Patient/${Q}`, type: "Patient", need: "r", patientRule: "deny:compartment" },
  { method: "GET", url: `Patient?_id=${P}`, type: "Patient", need: "s", patientRule: "allow" },
  { method: "GET", url: `Patient/${P}/Observation`, type: "Observation", need: "s", patientRule: "allow" },
  { method: "GET", url: `Patient/${Q}/Observation`, type: "Observation", need: "s", patientRule: "deny:compartment" },
  { method: "GET", url: "Medication?code=x", type: "Medication", need: "s", patientRule: "allow" },
];

/** Every (context, type scope, permission form, request), expected from the rules above. */
function generated(): Row[] {
  const rows: Row[] = [];
  for (const ctx of ["patient", "user", "system"]) {
    for (const typeScope of ["Observation", "*"]) {
      for (const perm of ["read", "write", "*", "rs", "cud", "c", "r", "u", "d", "s", "cruds", "sr", "rx"]) {
        const grant = letters(perm);
        for (const q of REQUESTS) {
          const typeOk = typeScope === "*" || typeScope === q.type;
          let expect: string;
          if (!typeOk || !grant.includes(q.need)) expect = `deny:${grant === "" ? "patient" : ctx}/${q.type}.${q.need}`;
          else if (ctx !== "patient") expect = "allow";
          else expect = q.patientRule === "check" ? "check:patient" : q.patientRule;
          rows.push({ scopes: `${ctx}/${typeScope}.${perm} launch/patient`, patient: P, method: q.method, url: q.url, expect });
        }
      }
    }
  }
  return rows;
}

const HAND: Row[] = [
  // Public endpoints need nothing.
  { scopes: "", method: "GET", url: "metadata", expect: "allow" },
  { scopes: "", method: "GET", url: ".well-known/smart-configuration", expect: "allow" },
  // No patient in context under patient scopes.
  { scopes: "patient/*.rs", method: "GET", url: `Observation?patient=${P}`, expect: "deny:no_patient_context" },
  // Union across contexts: user/ lifts the compartment.
  { scopes: "patient/*.rs user/Observation.s", patient: P, method: "GET", url: `Observation?patient=${Q}`, expect: "allow" },
  { scopes: "patient/*.rs user/Observation.r", patient: P, method: "GET", url: "Observation/o1", expect: "allow" },
  // Granular.
  { scopes: "patient/Observation.rs?category=laboratory", patient: P, method: "GET", url: `Observation?patient=${P}&category=laboratory`, expect: "allow" },
  { scopes: "patient/Observation.rs?category=laboratory", patient: P, method: "GET", url: `Observation?patient=${P}`, expect: "deny:patient/Observation.s" },
  { scopes: "patient/Observation.rs?category=laboratory", patient: P, method: "GET", url: `Observation?patient=${Q}&category=laboratory`, expect: "deny:compartment_other_patient" },
  { scopes: "patient/Observation.rs?category=laboratory", patient: P, method: "GET", url: "Observation/o1", expect: "check:patient:granular" },
  { scopes: "user/Observation.rs?category=laboratory", method: "GET", url: "Observation/o1", expect: "check:granular" },
  { scopes: "user/Observation.rs?category=laboratory", method: "GET", url: "Observation?category=laboratory", expect: "allow" },
  { scopes: "patient/Patient.rs?gender=female", patient: P, method: "GET", url: `Patient/${P}`, expect: "check:granular" },
  // System search across types.
  { scopes: "system/*.rs", method: "GET", url: "?_type=Observation", expect: "allow" },
  { scopes: "system/Observation.rs", method: "GET", url: "?_type=Observation", expect: "deny:system/*.s" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "?_type=Observation", expect: "deny:compartment" },
  // Operations.
  { scopes: "system/*.rs", method: "GET", url: "$export", expect: "allow" },
  { scopes: "system/*.read", method: "GET", url: "$export", expect: "allow" },
  { scopes: "system/*.r", method: "GET", url: "$export", expect: "deny:system/*.rs" },
  { scopes: "user/*.rs", method: "GET", url: "$export", expect: "deny:system/*.rs" },
  { scopes: "system/Patient.rs", method: "GET", url: "$export", expect: "deny:system/*.rs" },
  { scopes: "system/*.rs", method: "GET", url: "Patient/$export", expect: "allow" },
  { scopes: "system/*.rs", method: "GET", url: "Group/g1/$export", expect: "allow" },
  { scopes: "user/*.rs", method: "GET", url: "Group/g1/$export", expect: "deny:system/*.rs" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Patient/$export", expect: "deny:system/*.rs" },
  { scopes: "system/*.cruds", method: "GET", url: "Patient/$everything", expect: "deny:operation" },
  { scopes: "patient/*.cruds", patient: P, method: "GET", url: `Patient/${P}/$everything`, expect: "deny:operation" },
  // invalidScopes: ignore (default) grants from the rest; reject refuses the whole token.
  { scopes: "user/*.rs user/Observation.sr", method: "GET", url: "Observation", expect: "allow" },
  { scopes: "user/*.rs user/Observation.sr", method: "GET", url: "Observation", rejectInvalid: true, expect: "deny:invalid_scope" },
  { scopes: "user/*.rs openid fhirUser", method: "GET", url: "Observation", rejectInvalid: true, expect: "allow" },
  { scopes: "user/*.rs user/Foo.read", method: "GET", url: "metadata", rejectInvalid: true, expect: "allow" },
  // compartmentFor: user/ scopes held to the patient in context.
  { scopes: "user/*.rs", patient: P, method: "GET", url: `Observation?patient=${Q}`, compartmentFor: { user: true }, expect: "deny:compartment_other_patient" },
  { scopes: "user/*.rs", patient: P, method: "GET", url: `Observation?patient=${P}`, compartmentFor: { user: true }, expect: "allow" },
  { scopes: "user/*.rs", patient: P, method: "GET", url: "Observation/o1", compartmentFor: { user: true }, expect: "check:patient" },
  { scopes: "user/*.rs", method: "GET", url: `Observation?patient=${P}`, compartmentFor: { user: true }, expect: "deny:no_patient_context" },
  { scopes: "system/*.rs", patient: P, method: "GET", url: `Observation?patient=${Q}`, compartmentFor: { user: true }, expect: "allow" },
  { scopes: "user/*.rs", patient: P, method: "GET", url: `Observation?patient=${Q}`, compartmentFor: { system: true }, expect: "allow" },
  // Issue #14: Condition (and every type whose patient is its subject restricted to Patient)
  // is named by subject=Patient/<id> and subject:Patient=<id>, and by nothing else on subject.
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject=Patient/${P}`, expect: "allow" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject:Patient=${P}&clinical-status=active`, expect: "allow" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject=Patient/${Q}`, expect: "deny:compartment_other_patient" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject=${P}`, expect: "deny:compartment_other_patient" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject=Group/${P}`, expect: "deny:compartment_other_patient" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?patient=${P}&subject=Patient/${Q}`, expect: "deny:compartment_other_patient" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject:Group=${P}`, expect: "deny:compartment_modifier" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: "Condition?subject.name=x", expect: "deny:compartment_chain" },
  { scopes: "patient/Condition.rs launch/patient", patient: P, method: "GET", url: `Condition?subject=Patient/${Q}`, inject: true, expect: "deny:compartment_other_patient" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: `CarePlan?subject=Patient/${P}`, expect: "allow" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: `Procedure?subject=Patient/${Q}`, expect: "deny:compartment_other_patient" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: `AuditEvent?agent=Patient/${P}`, expect: "deny:compartment_no_patient" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Condition?code=x", inject: true, expect: `inject:patient=${P}` },
  // Patient parameter injection: only where no patient is named.
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Observation?category=x", inject: true, expect: `inject:patient=${P}` },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Patient", inject: true, expect: `inject:_id=${P}` },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Encounter", inject: true, expect: `inject:patient=${P}` },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: `Observation?patient=${Q}`, inject: true, expect: "deny:compartment_other_patient" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Observation?subject.name=x", inject: true, expect: "deny:compartment_chain" },
  { scopes: "patient/*.rs", patient: "a&b=c", method: "GET", url: "Observation", inject: true, expect: "deny:compartment_no_patient" },
  { scopes: "user/*.rs", method: "GET", url: "Observation", inject: true, expect: "allow" },
  // Operations the tenant's policy lists, with the permission each needs on its type.
  { scopes: "patient/*.rs", patient: P, method: "GET", url: `Patient/${P}/$everything`, ops: { $everything: "r" }, expect: "allow" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: `Patient/${Q}/$everything`, ops: { $everything: "r" }, expect: "deny:compartment_operation" },
  { scopes: "patient/*.rs", patient: P, method: "GET", url: "Patient/$everything", ops: { $everything: "r" }, expect: "deny:compartment_operation" },
  { scopes: "patient/Observation.rs", patient: P, method: "GET", url: `Patient/${P}/$everything`, ops: { $everything: "r" }, expect: "deny:patient/Patient.r" },
  { scopes: "user/*.rs", method: "GET", url: `Patient/${Q}/$everything`, ops: { $everything: "r" }, expect: "allow" },
  { scopes: "user/*.r", method: "POST", url: "Observation/$validate", ops: { $everything: "r" }, expect: "deny:operation" },
  { scopes: "user/*.cruds", method: "POST", url: "Observation/$validate", ops: { $validate: "c" }, expect: "allow" },
  { scopes: "system/*.rs", method: "GET", url: "$meta", ops: { $meta: "r" }, expect: "allow" },
  { scopes: "system/Patient.rs", method: "GET", url: "$meta", ops: { $meta: "r" }, expect: "deny:system/*.r" },
  // Malformed scope strings grant nothing, and never break the request.
  { scopes: "patient/Observation.rs?", patient: P, method: "GET", url: `Observation?patient=${P}`, expect: "deny:patient/Observation.s" },
  { scopes: "patient//Observation.rs", patient: P, method: "GET", url: `Observation?patient=${P}`, expect: "deny:patient/Observation.s" },
  { scopes: "patient/Observation.rs.rs", patient: P, method: "GET", url: `Observation?patient=${P}`, expect: "deny:patient/Observation.s" },
  { scopes: "\u0000patient/Observation.rs", patient: P, method: "GET", url: `Observation?patient=${P}`, expect: "deny:patient/Observation.s" },
  { scopes: "patient%2FObservation.rs", patient: P, method: "GET", url: `Observation?patient=${P}`, expect: "allow" },
  // Bundles: each entry on its own (the Bundle JSON travels in the query slot of the row).
  {
    scopes: "patient/*.rs launch/patient",
    patient: P,
    method: "POST",
    url: "?" + JSON.stringify({ resourceType: "Bundle", type: "transaction", entry: [{ request: { method: "GET", url: `Observation?patient=${P}` } }, { request: { method: "GET", url: `Observation?patient=${Q}` } }, { request: { method: "DELETE", url: "Observation/o1" } }, { request: { method: "GET", url: "Observation/o1" } }] }),
    expect: "deny-entries:1=compartment_other_patient,2=patient/Observation.d,3=bundle_read_check",
  },
  {
    scopes: "patient/*.cruds launch/patient",
    patient: P,
    method: "POST",
    url: "?" + JSON.stringify({ resourceType: "Bundle", type: "transaction", entry: [
      { resource: { resourceType: "Observation", subject: { reference: `Patient/${P}` } }, request: { method: "POST", url: "Observation" } },
      { resource: { resourceType: "Observation", subject: { reference: `Patient/${Q}` } }, request: { method: "POST", url: "Observation" } },
      { request: { method: "POST", url: "Observation" } },
      { resource: { resourceType: "Observation", id: "o1", subject: { reference: `Patient/${P}` } }, request: { method: "PUT", url: "Observation/o1" } },
      { request: { method: "DELETE", url: "Observation/o1" } },
      { resource: { resourceType: "Observation", subject: { reference: `Patient/${P}` }, performer: [{ reference: `Patient/${Q}` }] }, request: { method: "POST", url: "Observation" } },
      { resource: { resourceType: "Observation", subject: { reference: `Patient/${P}` } }, request: { method: "POST", url: "Observation", ifNoneExist: `patient=${Q}` } },
      { resource: { resourceType: "Condition", subject: { reference: `Patient/${P}` } }, request: { method: "POST", url: "Observation" } },
      { resource: { resourceType: "Observation", id: "o2", subject: { reference: `Patient/${P}` } }, request: { method: "PUT", url: "Observation/o1" } },
    ] }),
    expect: "deny-entries:1=compartment_write,2=bad_entry,3=compartment_write,4=compartment_write,5=compartment_write,6=conditional_criteria,7=bad_entry,8=bad_entry",
  },
  {
    scopes: "user/*.cruds",
    method: "POST",
    url: "?" + JSON.stringify({ resourceType: "Bundle", type: "batch", entry: [{ request: { method: "GET", url: `Observation?patient=${Q}` } }, { resource: { resourceType: "Observation", id: "o1" }, request: { method: "PUT", url: "Observation/o1" } }] }),
    expect: "allow",
  },
  {
    // Conditional criteria need the search permission too: a create scope alone cannot probe.
    scopes: "user/*.c user/*.u",
    method: "POST",
    url: "?" + JSON.stringify({ resourceType: "Bundle", type: "batch", entry: [
      { resource: { resourceType: "Observation" }, request: { method: "POST", url: "Observation", ifNoneExist: "identifier=x" } },
      { resource: { resourceType: "Observation" }, request: { method: "PUT", url: "Observation?identifier=x" } },
      { resource: { resourceType: "Observation" }, request: { method: "POST", url: "Observation" } },
    ] }),
    expect: "deny-entries:0=conditional_criteria,1=conditional_criteria",
  },
  {
    scopes: "user/*.rs",
    method: "POST",
    url: "?" + JSON.stringify({ resourceType: "Bundle", type: "batch", entry: [{ request: { method: "POST", url: "Observation" } }, { request: { method: "GET", url: "https://x/Patient/1" } }, { request: { method: "POST", url: "" } }, { request: { method: "POST", url: "/" } }] }),
    expect: "deny-entries:0=user/Observation.c,1=bad_entry,2=bad_entry,3=nested_bundle",
  },
  { scopes: "user/*.rs", method: "POST", url: "?" + JSON.stringify({ resourceType: "Bundle", type: "searchset" }), expect: "bundle-error:the body is not a batch or transaction Bundle" },
];

describe("SMART authorization decision table (request side)", () => {
  const rows = [...generated(), ...HAND];
  it(`decides ${rows.length} (scopes, context, request) cases as SMART App Launch says`, async () => {
    expect(rows.length).toBeGreaterThanOrEqual(250);
    const got = await run(rows);
    const wrong = rows.map((r, i) => ({ r, got: got[i] })).filter((x) => x.got !== x.r.expect);
    expect(wrong.map((x) => `${x.r.scopes} | ${x.r.method} ${x.r.url.slice(0, 80)} -> ${x.got}, expected ${x.r.expect}`)).toEqual([]);
  });
});

describe("memoized compartment verdicts", () => {
  it("answer a repeated GET search from the token's memo, without parsing its arguments, per refuse/inject mode", async () => {
    const fn = `function(types, gen)
      package.path = gen .. "/?.lua;" .. package.path
      ngx = ngx or { shared = {} }
      local classify = require("fhir.classify").classify
      local authz = require("scopes.authorize")
      local id = { issuer = "t", scope = "patient/*.rs", patient = "p1", exp = 2e9, at = 1e9, via = "jwt", tid = "x" }
      local calls = 0
      local function args(q) return function() calls = calls + 1; local t = {} for k, v in q:gmatch("([^&=]+)=([^&]*)") do t[k] = { v } end return t end end
      local out = {}
      local c = classify("GET", "/Observation", types)
      local function show(v) if v == nil then return "allow" elseif v.inject then return "inject" else return "deny:" .. v.reason end end
      out[#out + 1] = show(authz.authorize(id, c, args("patient=p2"), { compartment_search = "refuse" }, "patient=p2"))
      out[#out + 1] = show(authz.authorize(id, c, args("patient=p2"), { compartment_search = "refuse" }, "patient=p2"))
      out[#out + 1] = show(authz.authorize(id, c, args("patient=p1"), { compartment_search = "refuse" }, "patient=p1"))
      out[#out + 1] = show(authz.authorize(id, c, args("patient=p1"), { compartment_search = "refuse" }, "patient=p1"))
      out[#out + 1] = show(authz.authorize(id, c, args("category=x"), { compartment_search = "refuse" }, "category=x"))
      out[#out + 1] = show(authz.authorize(id, c, args("category=x"), { compartment_search = "inject" }, "category=x"))
      out[#out + 1] = show(authz.authorize(id, c, args("category=x"), { compartment_search = "inject" }, "category=x"))
      out[#out + 1] = "calls=" .. calls
      return out
    end`;
    const [r] = await runLua("scopes.scope", fn, [[TYPES, genDir]]);
    expect(r).toEqual({ ok: true, values: [["deny:compartment_other_patient", "deny:compartment_other_patient", "allow", "allow", "deny:compartment_no_patient", "inject", "inject", "calls=4"]] });
  });
});
