/**
 * batch and transaction Bundles, authorized entry by entry before anything is forwarded
 * (issue #5). Every entry is classified and authorized as if it were its own request; if any
 * is denied, the whole Bundle is refused with one issue per denied entry, naming its index.
 *
 * Refused outright: a body that is not a batch or transaction Bundle, more than MAX_ENTRIES
 * entries, an entry without a relative `request.url`, and entries whose answer would need a
 * response check (reads by id under patient or granular scopes): those are read directly.
 * An entry's resource must be of its URL's type, and carry its URL's id on an update; its
 * conditional criteria (`ifNoneExist`, or the query of a conditional update or delete) are
 * authorized as the search they are. The body was decoded by the strict JSON front (fhir/json).
 */
import type { Identity } from "../auth/cache";
import { classify, type Classification } from "../fhir/classify";
import { splitUrl } from "../fhir/cost";
import { canonicalQuery } from "../http/query";
import * as fhir from "../generated/fhir_r4";
import { authorize, criteriaDenial, criteriaOf, refusing, toSearchArgs, type AuthzRules, type DecodeArgs } from "./authorize";
import { checkWriteBody } from "./write";
import type { SearchArgs } from "./compartment";

export const MAX_ENTRIES = 1000;

export interface EntryDenial {
  readonly index: number;
  readonly message: string;
  /** Permission or rule code, for metrics. */
  readonly missing: string;
  readonly type: string;
}

export type BundleVerdict = LuaMultiReturn<[readonly EntryDenial[], undefined] | [undefined, string]>;

const find = string.find;

/** Why an entry's resource does not fit its request, or undefined. */
function shapeDenial(c: Classification, resource: unknown): string | undefined {
  if (c.interaction !== "create" && c.interaction !== "update") return resource === undefined ? undefined : "only a create or an update carries a resource";
  if (type(resource) !== "table") return "a create or an update needs its resource";
  const r = resource as Record<string, unknown>;
  if (r["resourceType"] !== c.resource_type) return "the resource's type does not match its request.url";
  if (c.interaction === "update" && c.id !== undefined && r["id"] !== c.id) return "the resource's id does not match its request.url";
  return undefined;
}

type Entry = { request?: { method?: unknown; url?: unknown; ifNoneExist?: unknown }; resource?: unknown } | undefined;

/** One classified entry: scopes first, then its resource and criteria, then the patient's compartment. */
function entryDenial(i: number, c: Classification, query: string | undefined, ifNoneExist: unknown, e: Entry, id: Identity, rules: AuthzRules, decodeArgs: DecodeArgs, types: LuaTable<string, boolean>): EntryDenial | undefined {
  const t = c.compartment_type ?? c.resource_type ?? "none";
  const at = "entry " + tostring(i) + ": ";
  const args = (): SearchArgs => (query === undefined ? {} : toSearchArgs(decodeArgs(query)));
  const verdict = authorize(id, c, args, rules);
  if (verdict !== undefined && "message" in verdict) return { index: i, message: at + verdict.message, missing: verdict.missing ?? verdict.reason, type: t };
  const shape = shapeDenial(c, e?.resource);
  if (shape !== undefined) return { index: i, message: at + shape, missing: "bad_entry", type: t };
  const criteria = criteriaOf(c, query, ifNoneExist);
  const cdenial = criteria === undefined ? undefined : criteriaDenial(id, c, criteria, decodeArgs, rules);
  if (cdenial !== undefined) return { index: i, message: at + "its conditional criteria are a search, and " + cdenial, missing: "conditional_criteria", type: t };
  if (verdict === undefined) return undefined;
  if ("inject" in verdict) return { index: i, message: at + "the search must name the patient in context", missing: "compartment_no_patient", type: t };
  if ("response" in verdict) return { index: i, message: at + "this read needs a check of its response; read it directly, not in a Bundle", missing: "bundle_read_check", type: t };
  // A create carries its resource here; anything that must look at what is already on the
  // server (update, delete) is sent on its own.
  const r = e?.resource;
  if (!verdict.existing && type(r) === "table" && checkWriteBody(r as Record<string, unknown>, verdict.type, verdict.patient, fhir.patient_paths, types)[0] === undefined) return undefined;
  return { index: i, message: at + "under patient scopes a Bundle may only create resources that keep to the patient's compartment", missing: "compartment_write", type: t };
}

/** A query's canonical reading, or its refusal; no query stays none. */
function canonicalOrNot(q: string | undefined, maxParams: number): LuaMultiReturn<[string | undefined, undefined] | [undefined, string]> {
  if (q === undefined) return $multi(undefined, undefined);
  return canonicalQuery(q, maxParams);
}

/**
 * Denied entries (empty: all allowed), or an error message when the body is not a Bundle the
 * gateway can authorize. `decodeArgs` parses a query string (ngx.decode_args in nginx).
 */
export function authorizeBundle(
  doc: unknown,
  id: Identity,
  types: LuaTable<string, boolean>,
  decodeArgs: DecodeArgs,
  tenantRules: AuthzRules,
  maxParams: number,
): BundleVerdict {
  // Inside a Bundle a compartment search must name the patient itself: nothing is injected.
  const rules = refusing(tenantRules);
  if (type(doc) !== "table") return $multi(undefined, "the body is not JSON");
  const b = doc as { resourceType?: unknown; type?: unknown; entry?: unknown };
  if (b.resourceType !== "Bundle" || (b.type !== "batch" && b.type !== "transaction")) return $multi(undefined, "the body is not a batch or transaction Bundle");
  const entries = b.entry === undefined ? [] : (b.entry as unknown[]);
  if (type(entries) !== "table") return $multi(undefined, "Bundle.entry is not a list");
  if (entries.length > MAX_ENTRIES) return $multi(undefined, "the Bundle has more than " + tostring(MAX_ENTRIES) + " entries");
  const denied: EntryDenial[] = [];
  for (let i = 0; i < entries.length; i++) {
    // JSON null decodes to cjson.null, a userdata that cannot be indexed: only tables are entries.
    const raw = entries[i];
    const e = type(raw) === "table" && type((raw as { request?: unknown }).request) === "table" ? (raw as Entry) : undefined;
    const method = e?.request?.method;
    const url = e?.request?.url;
    if (typeof method !== "string" || typeof url !== "string" || url === "" || find(url, "://", 1, true)[0] !== undefined) {
      denied.push({ index: i, message: "entry " + tostring(i) + ": needs request.method and a relative request.url", missing: "bad_entry", type: "none" });
      continue;
    }
    const [path, rawQuery] = splitUrl(url);
    const [c, err] = classify(method, path, types);
    if (c === undefined) {
      denied.push({ index: i, message: "entry " + tostring(i) + ": not a FHIR interaction (" + (err ?? "invalid") + ")", missing: "bad_entry", type: "none" });
      continue;
    }
    // An entry's query and ifNoneExist are queries: authorized in their canonical reading
    // (http/query), and refused where that reading refuses them.
    const [query, qerr] = canonicalOrNot(rawQuery, maxParams);
    const rawCriteria = e?.request?.ifNoneExist;
    const [ifNoneExist, cerr] = canonicalOrNot(typeof rawCriteria === "string" ? rawCriteria : undefined, maxParams);
    const bad = qerr ?? cerr;
    if (bad !== undefined) {
      denied.push({ index: i, message: "entry " + tostring(i) + ": its query is refused (" + bad + ")", missing: "bad_entry", type: "none" });
      continue;
    }
    const d = entryDenial(i, c, query, ifNoneExist ?? rawCriteria, e, id, rules, decodeArgs, types);
    if (d !== undefined) denied.push(d);
  }
  return $multi(denied, undefined);
}
