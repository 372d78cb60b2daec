/**
 * The tenants' budgets, compiled once per bundle (init_by_lua, shared by fork): their bucket key
 * prefixes, the RateLimit-Policy item each advertises, and their metric keys.
 */
import type { BudgetIR, InteractionClass, TenantIR } from "../generated/policy";
import * as policy from "../generated/policy";
import type { Identity } from "../auth/cache";
import { countSoon } from "../metrics/metrics";

/** fe_ratelimit_decisions_total's outcomes. */
export type Outcome = "admitted" | "refused" | "shadow_refused" | "too_costly" | "shadow_too_costly" | "dict_full";
const OUTCOMES: readonly Outcome[] = ["admitted", "refused", "shadow_refused", "too_costly", "shadow_too_costly", "dict_full"];
const CLASSES = ["read", "search", "write", "export", "operation", "none"];

export interface Budget {
  readonly id: string;
  readonly tenant: string;
  /** `tenant \t budget`: the start of every bucket key of the budget. */
  readonly prefix: string;
  readonly byClient: boolean;
  readonly bySub: boolean;
  readonly byPatient: boolean;
  readonly byClass: boolean;
  readonly classes: LuaTable<InteractionClass, boolean> | undefined;
  /** Cost tokens per second, and the most the bucket holds. */
  readonly rate: number;
  readonly burst: number;
  readonly shadow: boolean;
  /** `"id";q=<burst>;w=<seconds to refill the burst>` (draft-ietf-httpapi-ratelimit-headers). */
  readonly policyItem: string;
  /** Metric keys by outcome: `q \t tenant \t budget \t outcome`, built once. */
  readonly counts: Readonly<Record<Outcome, string>>;
  /** Bucket keys by class, built once, for a budget per class alone (no identity values). */
  readonly classKeys: LuaTable<string, string> | undefined;
  /** The tokens-remaining gauge's key. */
  readonly gauge: string;
}

/**
 * Bucket time counts from here, not from 1970: a spent mark is seconds x rate, and from 1970
 * (1.8e9 s) at a million tokens a second it would be past 2^53, where a double cannot add 1.
 * From 2025-06 it stays below 2^48 until 2030. Fixed, so buckets survive a reload, and the
 * same in Redis, so every node agrees.
 */
export const ORIGIN = 1_750_000_000;

/** Longer keys (client ids, subs and patients come from tokens) are hashed; 256 bytes keeps a bucket small. */
const MAX_KEY = 256;

function countKeys(prefix: string): Record<Outcome, string> {
  const out = {} as Record<Outcome, string>;
  for (const o of OUTCOMES) out[o] = prefix + o;
  return out;
}

function classKeys(prefix: string): LuaTable<string, string> {
  const out = new LuaTable<string, string>();
  for (const c of CLASSES) out.set(c, prefix + "\t" + c);
  return out;
}

/** One decision, counted in the worker and flushed by the metrics timer. */
export function count(b: Budget, o: Outcome): void {
  countSoon(b.counts[o]);
}

function compile(t: TenantIR, b: BudgetIR, prefix: string): Budget {
  const has = (d: string): boolean => {
    for (const p of b.per) if (p === d) return true;
    return false;
  };
  return {
    id: b.id,
    tenant: t.id,
    prefix,
    byClient: has("client_id"),
    bySub: has("sub"),
    byPatient: has("patient"),
    byClass: has("class"),
    classes: b.classes,
    rate: b.rate,
    burst: b.burst,
    shadow: b.shadow,
    policyItem: '"' + b.id + '";q=' + string.format("%d", b.burst) + ";w=" + string.format("%d", math.max(1, math.ceil(b.burst / b.rate))),
    counts: countKeys("q\t" + t.id + "\t" + b.id + "\t"),
    classKeys: has("class") && !has("client_id") && !has("sub") && !has("patient") ? classKeys(prefix) : undefined,
    gauge: "t\t" + t.id + "\t" + b.id,
  };
}

export const byTenant = new LuaTable<string, Budget[]>();
for (const t of policy.tenants) {
  const list: Budget[] = [];
  for (const b of t.budgets) list.push(compile(t, b, t.id + "\t" + b.id));
  byTenant.set(t.id, list);
}

/** Each tenant's cache-miss budget (cache/README.md): buckets apart from the others', under `m`. */
export const missByTenant = new LuaTable<string, Budget>();
for (const t of policy.tenants) {
  const m = t.cache === undefined ? undefined : t.cache.miss_budget;
  if (m !== undefined) missByTenant.set(t.id, compile(t, m, t.id + "\tm\t" + m.id));
}

function inClasses(b: Budget, klass: string): boolean {
  return b.classes === undefined || b.classes.get(klass as InteractionClass) === true;
}

/**
 * The bucket key of a request in a budget, or undefined when the budget does not apply to it:
 * another class, or the request lacks one of the budget's values (no token, no patient).
 */
export function keyOf(b: Budget, id: Identity | undefined, klass: string): string | undefined {
  return inClasses(b, klass) ? bucketKey(b, id, klass) : undefined;
}

function bucketKey(b: Budget, id: Identity | undefined, klass: string): string | undefined {
  const byClass = b.classKeys;
  if (byClass !== undefined) return byClass.get(klass);
  let k = b.prefix;
  if (b.byClient) {
    const v = id === undefined ? undefined : id.client_id;
    if (v === undefined) return undefined;
    k = k + "\tc=" + v;
  }
  if (b.bySub) {
    const v = id === undefined ? undefined : id.sub;
    if (v === undefined) return undefined;
    k = k + "\ts=" + v;
  }
  if (b.byPatient) {
    const v = id === undefined ? undefined : id.patient;
    if (v === undefined) return undefined;
    k = k + "\tp=" + v;
  }
  if (b.byClass) k = k + "\t" + klass;
  if (k.length > MAX_KEY) k = b.prefix + "\t#" + ngx.md5(k);
  return k;
}

/** The classes a batch's entries are costed by (metadata entries cost nothing). */
const ENTRY_CLASSES = ["read", "search", "write", "export", "operation"];

/**
 * A request's charges, in scratch lists reused by every request: for each budget that applies,
 * the bucket it spends from and how much. A request is one charge per budget. A batch is charged
 * by what its entries are (`byClass`, from fhir/cost): a budget of some classes spends what the
 * batch's entries of those classes cost, and a budget per class spends each class's share in
 * that class's bucket, so batching searches does not get them past a search budget.
 */
export const chargeBudget: Budget[] = [];
export const chargeKey: string[] = [];
export const chargeCost: number[] = [];

function push(n: number, b: Budget, key: string, cost: number): number {
  chargeBudget[n] = b;
  chargeKey[n] = key;
  chargeCost[n] = cost;
  return n + 1;
}

/** Fills the charge lists; returns how many there are. */
export function charges(budgets: readonly Budget[], id: Identity | undefined, klass: string, cost: number, byClass: LuaTable<string, number> | undefined): number {
  let n = 0;
  for (let i = 0; i < budgets.length; i++) {
    const b = budgets[i]!;
    if (byClass === undefined) {
      const key = keyOf(b, id, klass);
      if (key !== undefined) n = push(n, b, key, cost);
    } else if (b.byClass) {
      for (const k of ENTRY_CLASSES) {
        const c = byClass.get(k);
        if (c === undefined || c <= 0 || !inClasses(b, k)) continue;
        const key = bucketKey(b, id, k);
        if (key !== undefined) n = push(n, b, key, c);
      }
    } else {
      let sum = 0;
      for (const k of ENTRY_CLASSES) {
        const c = byClass.get(k);
        if (c !== undefined && inClasses(b, k)) sum = sum + c;
      }
      const key = sum > 0 ? bucketKey(b, id, klass) : undefined;
      if (key !== undefined) n = push(n, b, key, sum);
    }
  }
  return n;
}
