/**
 * SMART authorization of one request, in the access phase, after identity (issue #5, the
 * request side). Decided before the upstream sees anything, so a 403 never reveals whether
 * data exists.
 *
 * Reads by id that the request alone cannot decide (a compartment type other than Patient
 * under `patient/` scopes, or a read allowed only by granular scopes) come back as a
 * ResponseCheck: the access phase fetches the resource and checks it before the client gets
 * a byte (scopes/response).
 *
 * Fail closed where the body checks are not built yet: writes to compartment types under
 * `patient/` scopes, batch and transaction Bundles, operations other than $export. Each says
 * so in its 403.
 */
import * as fhir from "../generated/fhir_r4";
import type { Identity } from "../auth/cache";
import type { Classification } from "../fhir/classify";
import { countScopesIgnored, countSearchVerdict } from "../metrics/metrics";
import { checkSearch, type SearchArgs } from "./compartment";
import { decide, requiredPermission, type Decision } from "./permission";
import { parseScopes, R, S, type Granular, type ParsedScopes } from "./scope";

/**
 * A write under patient/ scopes: the resource in the body (create, update) must reference the
 * patient, and the resource already there (update, delete) must be in their compartment.
 */
export interface WriteCheck {
  readonly write: true;
  readonly type: string;
  readonly patient: string;
  readonly body: boolean;
  readonly existing: boolean;
}

/** Forward, with this `name=value` added to the query: the patient the search did not name. */
export interface Injection {
  readonly inject: string;
}

/** The parameter that names `patient` on `type`: `patient` where it exists, `_id` on Patient. */
function injectionFor(type: string, patient: string): Injection | undefined {
  const kinds = compartment.get(type);
  // Only a plain FHIR id goes into a query string unescaped.
  const [plain] = string.match(patient, "^[%w%-%.]+$");
  if (kinds === undefined || plain === undefined || patient.length > 64) return undefined;
  if (type === "Patient") return { inject: "_id=" + patient };
  if (kinds.get("patient") === "patient") return { inject: "patient=" + patient };
  if (kinds.get("subject") === "typed") return { inject: "subject=Patient/" + patient };
  return undefined;
}

/** The response of this read must be checked: in the patient's compartment, and/or granular. */
export interface ResponseCheck {
  readonly response: true;
  readonly type: string;
  readonly patient: string | undefined;
  readonly granular: readonly Granular[] | undefined;
}

export interface Denial {
  /** Client-facing: names the missing permission or the rule, never data. */
  readonly message: string;
  /** Fixed code for metrics. */
  readonly reason: string;
  /** The permission that was missing, when one was (`patient/Observation.s`). */
  readonly missing: string | undefined;
}

const types = fhir.resource_types;
const compartment = fhir.patient_compartment;
const elements = fhir.compartment_elements;
/** Scopes the policy gives a meaning of its own (the tenants' break-glass scopes, breakglass/step). */
let known: LuaTable<string, boolean> | undefined;
export function knowScopes(scopes: LuaTable<string, boolean>): void {
  known = scopes;
}

/**
 * Parsed scopes, once per token per worker: kept on the identity table, which the worker's
 * token LRU holds (keyed by the token's hash).
 */
const parsedKey = "__scopes";
export function scopesOf(id: Identity): ParsedScopes {
  const holder = id as unknown as Record<string, ParsedScopes | undefined>;
  const cached = holder[parsedKey];
  if (cached !== undefined) return cached;
  const p = parseScopes(id.scope, types, false, known);
  holder[parsedKey] = p;
  if (p.ignored > 0) countScopesIgnored(p.ignored);
  return p;
}

function denial(reason: string, message: string, missing?: string): Denial {
  return { reason, message, missing };
}

/** Query parameters as lists (repeats are AND); the values nginx could not decode are refused upstream anyway. */
export function toSearchArgs(raw: Record<string, string | boolean | (string | boolean)[] | undefined>): SearchArgs {
  const out: SearchArgs = {};
  for (const [k, v] of pairs(raw)) {
    if (typeof v === "string") out[k] = [v];
    else if (typeof v === "boolean") out[k] = [""];
    else if (v !== undefined) {
      const list: string[] = [];
      for (const x of v) list.push(typeof x === "string" ? x : "");
      out[k] = list;
    }
  }
  return out;
}

/** Decisions that need no request arguments, per parsed scopes: the same for every request of a token. */
const memoKey = "__decisions";
function decideCached(p: ParsedScopes, type: string, perm: number): Decision {
  const holder = p as unknown as Record<string, LuaTable<string, LuaTable<number, Decision>> | undefined>;
  let memo = holder[memoKey];
  if (memo === undefined) {
    memo = new LuaTable();
    holder[memoKey] = memo;
  }
  let byPerm = memo.get(type);
  if (byPerm === undefined) {
    byPerm = new LuaTable();
    memo.set(type, byPerm);
  }
  const hit = byPerm.get(perm);
  if (hit !== undefined) return hit;
  const d = decide(p, type, perm, undefined);
  byPerm.set(perm, d);
  return d;
}

/** Searches of one type: under patient scopes their verdicts are memoized per token by the raw query. */
export const SEARCHES: Record<string, boolean> = { "search-type": true, "history-type": true };
const READS: Record<string, boolean> = { "read": true, "vread": true, "history-instance": true };

/**
 * Undefined when the request is allowed. `args` gives the search parameters (query, and the
 * form body of POST _search) when the caller has them; it is only asked for when needed.
 */
const LETTER_BITS: Record<string, number> = { c: 1, r: 2, u: 4, d: 8, s: 16 };

/**
 * An operation the tenant's policy lists: its permission on the operation's type (`*` for a
 * system-level call). Under patient/ scopes only an instance call on the patient in context
 * is decidable from the request; anything else is refused.
 */
function authorizeOperation(p: ParsedScopes, id: Identity, c: Classification, letter: string): Denial | undefined {
  const bit = LETTER_BITS[letter] ?? 0;
  const type = c.resource_type ?? "*";
  const d = decideCached(p, type, bit);
  if (!d.allow) return denial("scope", "requires " + (d.missing ?? "a scope for this operation"), d.missing);
  if (d.via !== "patient") return undefined;
  if (c.interaction === "operation-instance" && type === "Patient" && id.patient !== undefined && c.id === id.patient) return undefined;
  return denial("compartment_operation", "under patient scopes an operation may only run on the patient in context");
}

function compartmentSearch(ctype: string, a: SearchArgs, patient: string, inject: boolean): Denial | Injection | undefined {
  const err = checkSearch(ctype, a, patient, compartment, elements);
  if (err === undefined || err === "not_compartment") return undefined;
  if (err === "no_patient" && inject) {
    const inj = injectionFor(ctype, patient);
    if (inj !== undefined) return inj;
  }
  return denial("compartment_" + err, "the search must name the patient in context, and only that patient");
}

/**
 * Most memoized search verdicts per token (all types together): bounded memory per cached
 * token, however many distinct queries a client sends; past it, searches are checked afresh.
 */
const SEARCH_MEMO_MAX = 256;
interface SearchMemo {
  readonly byType: LuaTable<string, LuaTable<string, Denial | Injection | true>>;
  size: number;
}

function searchMemo(p: ParsedScopes, inject: boolean): SearchMemo {
  const holder = p as unknown as Record<string, SearchMemo | undefined>;
  const key = inject ? "__searchInject" : "__searchRefuse";
  let m = holder[key];
  if (m === undefined) {
    m = { byType: new LuaTable(), size: 0 };
    holder[key] = m;
  }
  return m;
}

function memoFor(m: SearchMemo, ctype: string): LuaTable<string, Denial | Injection | true> {
  let t = m.byType.get(ctype);
  if (t === undefined) {
    t = new LuaTable();
    m.byType.set(ctype, t);
  }
  return t;
}

/** Interactions with no resource permission: Bundles (authorized entry by entry elsewhere), $export, policy-listed operations. */
function authorizeOperationCall(p: ParsedScopes, id: Identity, c: Classification, operations: LuaTable<string, string> | undefined): Denial | undefined {
  if (c.interaction === "batch") {
    // The access phase authorizes Bundles entry by entry (scopes/bundle); one inside a
    // Bundle is refused.
    return denial("nested_bundle", "a Bundle inside a Bundle is not allowed");
  }
  // Bulk export at any level (system, Patient/$export, Group/{id}/$export) is a backend
  // service's job: system/ scopes that read and search everything.
  if (c.operation === "$export") {
    const d = decide(p, "*", R, undefined);
    const s = decide(p, "*", S, undefined);
    if (d.allow && s.allow && d.via === "system" && s.via === "system") return undefined;
    return denial("export", "requires system/*.rs", "system/*.rs");
  }
  const letter = c.operation === undefined ? undefined : operations?.get(c.operation);
  if (letter !== undefined) return authorizeOperation(p, id, c, letter);
  return denial("operation", "this operation is not allowed by the gateway's policy");
}

/**
 * The tenant's authorization policy (a TenantIR is one): operations it governs (name -> the
 * permission letter), whether a compartment search without a patient gets one injected or is
 * refused, which other contexts are held to the compartment, and whether a token with scopes
 * that do not parse is refused. Absent fields take the defaults (none, refuse, none, ignore).
 */
export interface AuthzRules {
  readonly operations?: LuaTable<string, string>;
  readonly compartment_search?: "refuse" | "inject";
  readonly compartment_for?: LuaTable<string, boolean>;
  readonly reject_invalid_scopes?: boolean;
}

/**
 * `rawQuery` is the request's query string when the search parameters are all in it (a GET),
 * which lets compartment verdicts be memoized per token; undefined otherwise.
 */
export function authorize(
  id: Identity,
  c: Classification,
  args: (this: void) => SearchArgs,
  rules: AuthzRules,
  rawQuery?: string,
): Denial | ResponseCheck | WriteCheck | Injection | undefined {
  const operations = rules.operations;
  const inject = rules.compartment_search === "inject";
  const compartmentFor = rules.compartment_for;
  const rejectInvalid = rules.reject_invalid_scopes;
  const perm = requiredPermission(c.interaction);
  if (perm === 0) return undefined;
  const p = scopesOf(id);
  if (rejectInvalid === true && p.invalid !== undefined) return denial("invalid_scope", "the token holds a scope this gateway cannot read, and this tenant refuses such tokens");
  if (perm < 0) return authorizeOperationCall(p, id, c, operations);
  const type = c.compartment_type ?? c.resource_type ?? "*";
  const isSearch = SEARCHES[c.interaction] === true || c.interaction === "search-system" || c.interaction === "search-compartment";
  // Without arguments first (memoized per token and (type, permission)): only a granular
  // search or a patient-scoped search needs the request's parameters parsed.
  let d = decideCached(p, type, perm);
  let a: SearchArgs | undefined;
  if (isSearch && !d.allow) {
    a = args();
    d = decide(p, type, perm, a);
  }
  if (!d.allow) return denial("scope", "requires " + (d.missing ?? "a scope for this interaction"), d.missing);
  const granular = d.granular !== undefined && perm === R ? d.granular : undefined;
  // The policy may hold user/ or system/ scopes to the compartment too.
  const held = d.via === "patient" || (d.via !== undefined && compartmentFor?.get(d.via) === true);
  if (!held) return granular === undefined ? undefined : { response: true, type, patient: undefined, granular };

  // patient/ scopes: the patient compartment.
  const patient = id.patient;
  if (patient === undefined) return denial("no_patient_context", "these scopes need a patient in context (launch/patient)");
  const ctype = c.resource_type;
  if (SEARCHES[c.interaction] === true && ctype !== undefined) return memoizedSearch(p, ctype, patient, inject, rawQuery, a, args);
  return compartmentVerdict(c, type, patient, granular);
}

/**
 * A type search under patient scopes. Apps repeat their searches: the verdict for this token,
 * type and raw query string is memoized, so a repeated search parses nothing.
 */
function memoizedSearch(p: ParsedScopes, ctype: string, patient: string, inject: boolean, rawQuery: string | undefined, a: SearchArgs | undefined, args: (this: void) => SearchArgs): Denial | Injection | undefined {
  const memo = rawQuery === undefined ? undefined : searchMemo(p, inject);
  const byQuery = memo === undefined ? undefined : memoFor(memo, ctype);
  const hit = byQuery === undefined ? undefined : byQuery.get(rawQuery!);
  if (hit !== undefined) return hit === true ? undefined : hit;
  const verdict = compartmentSearch(ctype, a ?? args(), patient, inject);
  const memoized = memo !== undefined && byQuery !== undefined && memo.size < SEARCH_MEMO_MAX;
  if (memoized) {
    byQuery.set(rawQuery!, verdict ?? true);
    memo.size = memo.size + 1;
  }
  countSearchVerdict(memoized);
  return verdict;
}

/** Everything but a type search, under patient scopes: compartment searches, reads, writes. */
function compartmentVerdict(c: Classification, type: string, patient: string, granular: readonly Granular[] | undefined): Denial | ResponseCheck | WriteCheck | undefined {
  const ctype = c.resource_type;
  if (c.interaction === "search-compartment") {
    if (ctype === "Patient" && c.id === patient) return undefined;
    return denial("compartment", "requires the patient in context's own compartment");
  }
  if (c.interaction === "search-system" || c.interaction === "history-system") {
    return denial("compartment", "patient scopes cannot search across all types");
  }
  if (ctype === undefined || compartment.get(ctype) === undefined) {
    return granular === undefined ? undefined : { response: true, type, patient: undefined, granular };
  }
  if (READS[c.interaction] === true) {
    if (ctype === "Patient") {
      if (c.id !== patient) return denial("compartment", "requires the patient in context");
      return granular === undefined ? undefined : { response: true, type: ctype, patient: undefined, granular };
    }
    return { response: true, type: ctype, patient, granular };
  }
  if (c.interaction === "create") return { write: true, type: ctype, patient, body: true, existing: false };
  if (c.interaction === "update") return { write: true, type: ctype, patient, body: true, existing: true };
  if (c.interaction === "delete") return { write: true, type: ctype, patient, body: false, existing: true };
  // A JSON or FHIRPath patch cannot be checked for what it does to the compartment references.
  return denial("compartment_patch", "patch is not allowed under patient scopes; use update");
}

/**
 * The patient a read or search is held to: the patient in context, when the grant that allows
 * the interaction on its type (decided without the request's parameters, memoized per token)
 * is a patient/ scope or one of a context the tenant holds to the compartment. Undefined for a
 * user or system grant, and for one that only granular scopes give.
 */
export function heldPatient(id: Identity, c: Classification, compartmentFor: LuaTable<string, boolean> | undefined): string | undefined {
  const patient = id.patient;
  if (patient === undefined) return undefined;
  const perm = requiredPermission(c.interaction);
  if (perm <= 0) return undefined;
  const d = decideCached(scopesOf(id), c.compartment_type ?? c.resource_type ?? "*", perm);
  if (!d.allow || d.via === undefined) return undefined;
  return d.via === "patient" || compartmentFor?.get(d.via) === true ? patient : undefined;
}

/** The same rules, with a compartment search that names no patient refused rather than given one. */
export function refusing(rules: AuthzRules): AuthzRules {
  return { operations: rules.operations, compartment_search: "refuse", compartment_for: rules.compartment_for, reject_invalid_scopes: rules.reject_invalid_scopes };
}

/**
 * The search a conditional write runs, or undefined when it is not one: a create's
 * If-None-Exist, or the query of a type-level update, patch or delete ("" without one).
 */
export function criteriaOf(c: Classification, query: string | undefined, ifNoneExist: unknown): string | undefined {
  const i = c.interaction;
  if (i === "create") return typeof ifNoneExist === "string" ? ifNoneExist : undefined;
  if ((i === "update" || i === "patch" || i === "delete") && c.id === undefined) return query ?? "";
  return undefined;
}

/** Parses a query string (ngx.decode_args in nginx). */
export type DecodeArgs = (this: void, q: string) => Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Why a conditional write's criteria (If-None-Exist, a conditional URL's query) are not
 * allowed, or undefined: they are authorized as a search of the write's type, and under
 * patient scopes must name the patient themselves (`rules` should refuse, not inject).
 */
export function criteriaDenial(id: Identity, c: Classification, criteria: string, decodeArgs: DecodeArgs, rules: AuthzRules): string | undefined {
  const search: Classification = { interaction: "search-type", resource_type: c.resource_type, id: undefined, version_id: undefined, operation: undefined, compartment_type: undefined, cost: c.cost, class_costs: undefined, public: false };
  const v = authorize(id, search, () => toSearchArgs(decodeArgs(criteria)), rules);
  if (v === undefined || "response" in v) return undefined;
  if ("message" in v) return v.message;
  return "the search must name the patient in context, and only that patient";
}
