/**
 * The cost model: how many cost tokens a request spends from each budget that applies to it
 * (ratelimit/), from its classification and its search parameters. Pure: no ngx calls, so it
 * runs (and is tested) under plain LuaJIT too.
 *
 * | request | cost |
 * |---|---|
 * | read, vread, instance history | costs.read |
 * | search, type and system history | costs.search |
 * | search with _include, _revinclude, a chained parameter or _has | costs.complex_search |
 * | _count above costs.count_threshold | + 1 per costs.count_step (or part) above it |
 * | create, update, patch, delete | costs.write |
 * | batch, transaction | the sum of its entries' costs (bundleCost) |
 * | $export | costs.operations["$export"] or costs.export |
 * | other operations | costs.operations[name] or costs.operation |
 * | metadata, smart-configuration | 0 |
 */
import type { CostsIR, InteractionClass, TenantIR } from "../generated/policy";
import { classify, type Classification, type Interaction } from "./classify";

const find = string.find;
const sub = string.sub;
const byte = string.byte;
const tonumber_ = tonumber;
const ceil = math.ceil;

const CLASS_OF: Record<Interaction, InteractionClass | undefined> = {
  "read": "read", "vread": "read", "history-instance": "read",
  "search-type": "search", "search-system": "search", "search-compartment": "search",
  "history-type": "search", "history-system": "search",
  "create": "write", "update": "write", "patch": "write", "delete": "write", "batch": "write",
  "operation-system": "operation", "operation-type": "operation", "operation-instance": "operation",
  "capabilities": undefined, "smart-configuration": undefined,
};

/** The budget class of a request: `$export` is its own; metadata and smart-configuration have none. */
export function interactionClass(c: Classification): InteractionClass | undefined {
  if (c.operation === "$export") return "export";
  return CLASS_OF[c.interaction];
}

const PERCENT = 37;
const DOT = 46;

/** `%5Finclude` -> `_include`: a client may encode a parameter name, and the upstream decodes it. */
function decodeName(name: string): string {
  const [s] = string.gsub(name, "%%(%x%x)", (h: string) => string.char(tonumber_(h, 16)!));
  return s;
}

/**
 * A `_count` value as the upstream reads it: decoded (`%31%30%30%30` is 1000), and only whole
 * digits count (tonumber would also take "inf", "0x10" and "1e9").
 */
function countOf(raw: string): number {
  const [pct] = find(raw, "%", 1, true);
  const v = pct === undefined ? raw : decodeName(raw);
  const [digits] = find(v, "^%d+$");
  if (digits === undefined) return 0;
  // Ten digits or more is a billion or more: priced as a billion.
  return v.length > 9 ? 1e9 : tonumber_(v)!;
}

/**
 * One parameter's name makes the search expensive, and its results reach other types:
 * includes, chains, reverse chains (also the cache's reading, cache/key.readsOtherTypes).
 */
export function isComplex(name: string): boolean {
  const [colon] = find(name, ":", 1, true);
  const base = colon === undefined ? name : sub(name, 1, colon - 1);
  if (base === "_include" || base === "_revinclude" || base === "_has") return true;
  // A chain names a parameter of the referenced resource: `subject.name`, `subject:Patient.name`.
  const [dot] = find(name, ".", 1, true);
  return dot !== undefined;
}

/**
 * A search's cost from its parameters, `a=1&b=2` as sent (the query, or a POST _search form).
 * A name with `%` is decoded first, so an encoded `_include` costs what it is.
 */
export function searchCost(args: string | undefined, costs: CostsIR): number {
  if (args === undefined || args === "") return costs.search;
  let complex = false;
  let count = 0;
  const len = args.length;
  let pos = 1;
  while (pos <= len) {
    const [amp] = find(args, "&", pos, true);
    const stop = amp === undefined ? len : amp - 1;
    const [eq] = find(args, "=", pos, true);
    const nameEnd = eq === undefined || eq > stop ? stop : eq - 1;
    let name = sub(args, pos, nameEnd);
    let encoded = false;
    for (let i = pos; i <= nameEnd; i++) {
      const b = byte(args, i);
      if (b === PERCENT) encoded = true;
      else if (b === DOT) complex = true;
    }
    if (encoded) name = decodeName(name);
    if (!complex && isComplex(name)) complex = true;
    if (name === "_count" && eq !== undefined && eq < stop) {
      const n = countOf(sub(args, eq + 1, stop));
      if (n > count) count = n;
    }
    pos = stop + 2;
  }
  let cost = complex ? costs.complex_search : costs.search;
  if (count > costs.count_threshold) cost = cost + ceil((count - costs.count_threshold) / costs.count_step);
  return cost;
}

/** Cost tokens of one classified request; a batch is 0 here, and bundleCost sums its entries. */
export function requestCost(c: Classification, args: string | undefined, costs: CostsIR): number {
  const klass = interactionClass(c);
  if (klass === undefined) return 0;
  if (klass === "read") return costs.read;
  if (klass === "search") return searchCost(args, costs);
  if (klass === "write") return c.interaction === "batch" ? 0 : costs.write;
  const op = c.operation!;
  const named = costs.operations.get(op);
  if (named !== undefined) return named;
  return klass === "export" ? costs.export : costs.operation;
}

/** `Observation?patient=1` -> "/Observation", "patient=1". */
export function splitUrl(url: string): LuaMultiReturn<[string, string | undefined]> {
  const [q] = find(url, "?", 1, true);
  const path = q === undefined ? url : sub(url, 1, q - 1);
  const query = q === undefined ? undefined : sub(url, q + 1);
  return $multi(sub(path, 1, 1) === "/" ? path : "/" + path, query);
}

/** A route's own cost for a classified request, when the tenant has one (core/gateway). */
export type RouteCost = (this: void, tenant: TenantIR, c: Classification) => number | undefined;

/**
 * A batch or transaction: the sum of its entries, each costed as its own request (its route's
 * cost, else the model's). An entry that does not classify, is not an object, or is itself a
 * batch costs a write: authorization refuses it anyway where it can, and the gateway never
 * charges less than it might forward.
 */
export function bundleCost(doc: Record<string, unknown>, types: LuaTable<string, boolean>, tenant: TenantIR, routeCost: RouteCost, byClass?: LuaTable<string, number>): number {
  const costs = tenant.costs;
  const entries = doc["entry"];
  if (type(entries) !== "table") return 0;
  const list = entries as unknown[];
  let total = 0;
  for (let i = 0; i < list.length; i++) {
    const [cost, klass] = entryCost(list[i], types, tenant, routeCost, costs);
    total = total + cost;
    if (byClass !== undefined) byClass.set(klass, (byClass.get(klass) ?? 0) + cost);
  }
  return total;
}

/** An entry's cost and budget class ("none" for metadata). */
function entryCost(e: unknown, types: LuaTable<string, boolean>, tenant: TenantIR, routeCost: RouteCost, costs: CostsIR): LuaMultiReturn<[number, string]> {
  // JSON null decodes to cjson.null, a userdata: only a table may be indexed.
  if (type(e) !== "table") return $multi(costs.write, "write");
  const r = (e as { request?: unknown }).request;
  if (type(r) !== "table") return $multi(costs.write, "write");
  const method = (r as { method?: unknown }).method;
  const url = (r as { url?: unknown }).url;
  if (typeof method !== "string" || typeof url !== "string") return $multi(costs.write, "write");
  const [path, query] = splitUrl(url);
  const [c] = classify(method, path, types);
  if (c === undefined || c.interaction === "batch") return $multi(costs.write, "write");
  return $multi(routeCost(tenant, c) ?? requestCost(c, query, costs), interactionClass(c) ?? "none");
}
