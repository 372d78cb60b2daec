/**
 * The tokens the bench sends must be the ones its scenarios need: a token whose scopes refuse
 * part of a scenario measures the gateway's 403s, not its work. The gateway itself is the final
 * judge (the bench fails a target with more than 1% non-2xx); this is the static check, with an
 * oracle of the SMART rules the scenarios touch (lua-plugins/scopes/README.md).
 */
import { describe, expect, it } from "vitest";
import policy from "../../../bench/bench.policy.ts";
import { patientsNamed, requestList, SCENARIO_IDS, SCENARIOS, tokenFor, type BenchRequest } from "../../../bench/scenarios.ts";

type Context = "patient" | "user" | "system";
interface Grant {
  readonly context: Context;
  readonly type: string;
  readonly letters: string;
}

function grants(scope: string): Grant[] {
  const out: Grant[] = [];
  for (const s of scope.split(" ")) {
    const m = /^(patient|user|system)\/([A-Za-z*]+)\.([a-z*]+)$/.exec(s);
    if (m === null) continue;
    const p = m[3]!;
    const letters = p === "read" ? "rs" : p === "write" ? "cud" : p === "*" ? "cruds" : p;
    out.push({ context: m[1] as Context, type: m[2]!, letters });
  }
  return out;
}

/** What a request needs: nothing (public), a letter on a type, or system/*.rs ($export). */
function needs(r: BenchRequest, tenant: string): { public: true } | { type: string; letter: string } | { export: true } {
  const rest = r.path.replace(/^\/[a-z]+\/fhir\//, "").split("?")[0]!;
  const segs = rest.split("/");
  if (rest === "metadata" || rest === ".well-known/smart-configuration") return { public: true };
  const op = segs.find((s) => s.startsWith("$"));
  if (op === "$export") return { export: true };
  if (op !== undefined) {
    const rule = policy.tenants.find((t) => t.id === tenant)?.operations?.find((o) => o.name === op);
    if (rule === undefined) throw new Error(`${r.path}: ${op} is not allowed by the bench policy`);
    return { type: segs[0]!.startsWith("$") ? "*" : segs[0]!, letter: rule.permission };
  }
  if (r.method === "POST") return { type: segs[0]!, letter: "c" };
  return { type: segs[0]!, letter: segs.length === 1 ? "s" : "r" };
}

function allows(scope: string, contexts: readonly Context[], r: BenchRequest, tenant: string): boolean {
  const n = needs(r, tenant);
  const gs = grants(scope).filter((g) => contexts.includes(g.context));
  if ("public" in n) return true;
  if ("export" in n) return gs.some((g) => g.context === "system" && g.type === "*" && g.letters.includes("r") && g.letters.includes("s"));
  return gs.some((g) => (g.type === "*" || g.type === n.type) && g.letters.includes(n.letter));
}

const tenantOf = (r: BenchRequest): string => /^\/([a-z]+)\//.exec(r.path)?.[1] ?? "";

describe("bench tokens: each scenario's token allows its requests", () => {
  it("auth-cached's user or system token allows every request of its scenario, and names its tenant when there is one", () => {
    for (const id of SCENARIO_IDS) {
      const t = tokenFor(id, "user");
      if (!("token" in t)) throw new Error(`${id}: no user token`);
      for (const r of requestList(id)) expect(allows(t.token.scope, ["user", "system"], r, tenantOf(r)), `${id} ${r.method} ${r.path} under ${t.token.scope}`).toBe(true);
      expect(t.token.patient, id).toBeUndefined();
      const tenants = SCENARIOS[id].tenants;
      expect(t.token.tenant, id).toBe(tenants.length === 1 ? tenants[0] : undefined);
    }
  });

  it("auth-patient runs exactly where the requests name one patient, with that patient in context", () => {
    for (const id of SCENARIO_IDS) {
      const named = patientsNamed(requestList(id));
      const t = tokenFor(id, "patient");
      if (named.length === 1) {
        if (!("token" in t)) throw new Error(`${id} names one patient (${named[0]}) but declares no patient token`);
        expect(t.token.patient, id).toBe(named[0]);
        for (const r of requestList(id)) expect(allows(t.token.scope, ["patient"], r, tenantOf(r)), `${id} ${r.method} ${r.path} under ${t.token.scope}`).toBe(true);
      } else {
        expect("skip" in t, `${id} names ${named.length} patients`).toBe(true);
      }
    }
  });

  it("auth-patient runs in the single-patient scenarios (chart, writes) and says why it skips the others", () => {
    const runs = SCENARIO_IDS.filter((id) => "token" in tokenFor(id, "patient"));
    expect(runs.sort()).toEqual(["chart", "writes"]);
    const poc = tokenFor("poc", "patient");
    expect("skip" in poc && poc.skip).toMatch(/5 patients/);
    const cache = tokenFor("cache", "patient");
    expect("skip" in cache && cache.skip).toMatch(/no patient/);
  });

  it("patientsNamed reads every form a search, a read and a body name the patient with", () => {
    const get = (path: string): BenchRequest => ({ method: "GET", path });
    expect(patientsNamed([get("/a/fhir/Observation?patient=p1&_count=2")])).toEqual(["p1"]);
    expect(patientsNamed([get("/a/fhir/Observation?patient=Patient/p1"), get("/a/fhir/Observation?subject=Patient/p1"), get("/a/fhir/Observation?subject:Patient=p1")])).toEqual(["p1"]);
    expect(patientsNamed([get("/a/fhir/Patient?_id=p2"), get("/a/fhir/Patient/p3")])).toEqual(["p2", "p3"]);
    expect(patientsNamed([get("/a/fhir/Patient/$export?_type=Patient"), get("/a/fhir/Condition?subject:Patient.gender=female")])).toEqual([]);
    expect(patientsNamed([{ method: "POST", path: "/a/fhir/Observation", body: '{"subject":{"reference":"Patient/p9"}}' }])).toEqual(["p9"]);
  });
});
