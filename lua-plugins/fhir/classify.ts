/**
 * FHIR REST classification of a request, from its method and the path below the tenant's FHIR
 * base. Pure: no ngx calls, so it runs (and is tested) under plain LuaJIT too.
 *
 * Anything that does not parse as one of the R4 interactions is an error value; the caller turns
 * it into a 4xx and the request never reaches the upstream.
 */
import { matches } from "../core/str";

export type Interaction =
  | "read" | "vread" | "update" | "patch" | "delete"
  | "history-instance" | "history-type" | "history-system"
  | "create" | "search-type" | "search-system" | "search-compartment"
  | "capabilities" | "smart-configuration" | "batch"
  | "operation-system" | "operation-type" | "operation-instance";

/** bad_path: 400; unknown_type: 404; method: 405; not_found: 404. */
export type ClassifyError = "bad_path" | "bad_id" | "bad_operation" | "unknown_type" | "method" | "not_found";

export interface Classification {
  interaction: Interaction;
  resource_type: string | undefined;
  id: string | undefined;
  version_id: string | undefined;
  operation: string | undefined;
  /** The type searched inside a compartment: `Patient/1/Observation` gives Observation. */
  compartment_type: string | undefined;
  /** Cost tokens (fhir/cost), set by the classify step; 0 from classify itself. */
  cost: number;
  /** A batch's cost by the budget class of its entries (fhir/body); undefined otherwise. */
  class_costs: LuaTable<string, number> | undefined;
  /** metadata and .well-known/smart-configuration need no token. */
  public: boolean;
}

type Result = LuaMultiReturn<[Classification, undefined] | [undefined, ClassifyError]>;

const find = string.find;
const sub = string.sub;

const KNOWN_METHODS: Record<string, boolean> = {
  GET: true, HEAD: true, POST: true, PUT: true, PATCH: true, DELETE: true,
};

export function isSupportedMethod(method: string): boolean {
  return KNOWN_METHODS[method] === true;
}

/** FHIR id: [A-Za-z0-9\-\.]{1,64}. */
export function isValidId(s: string): boolean {
  const n = s.length;
  return n >= 1 && n <= 64 && !matches(s, "[^%w%-%.]");
}

/** `$name`: a letter, then letters, digits or dashes. */
function isValidOperation(s: string): boolean {
  return s.length >= 2 && s.length <= 64 && matches(s, "^%$%a[%w%-]*$");
}

/** Looks like a type name (capitalised word), whether or not R4 knows it. */
function looksLikeType(s: string): boolean {
  return s.length <= 64 && matches(s, "^%u%a*$");
}

function ok(
  interaction: Interaction,
  rtype: string | undefined,
  id: string | undefined,
  vid: string | undefined,
  op: string | undefined,
  ctype: string | undefined,
): Result {
  const c: Classification = {
    interaction,
    resource_type: rtype,
    id,
    version_id: vid,
    operation: op,
    compartment_type: ctype,
    cost: 0,
    class_costs: undefined,
    public: interaction === "capabilities" || interaction === "smart-configuration",
  };
  return $multi(c, undefined);
}

function fail(e: ClassifyError): Result {
  return $multi(undefined, e);
}

const isRead = (m: string): boolean => m === "GET" || m === "HEAD";
const isSearch = (m: string): boolean => m === "GET" || m === "HEAD" || m === "POST";

/**
 * One segment starting at `start`: its text, and where the next one starts (0 at the end), or
 * undefined for an empty segment (`//`, or a trailing `/`): the gateway never guesses.
 */
function segment(path: string, start: number, len: number): LuaMultiReturn<[string, number] | [undefined, number]> {
  const [slash] = find(path, "/", start, true);
  const stop = slash === undefined ? len : slash - 1;
  if (stop < start) return $multi(undefined, 0);
  if (slash === undefined) return $multi(sub(path, start, stop), 0);
  if (slash + 1 > len) return $multi(undefined, 0);
  return $multi(sub(path, start, stop), slash + 1);
}

/**
 * Split `/a/b/c` into at most 5 segments. Unrolled rather than a loop: a loop here ended the
 * access phase's root trace under LuaJIT (see the bench's jit.v check).
 */
function split(path: string, out: string[]): number | undefined {
  const len = path.length;
  if (len === 0 || path === "/") return 0;
  if (sub(path, 1, 1) !== "/") return undefined;
  const [s1, n1] = segment(path, 2, len);
  if (s1 === undefined) return undefined;
  out[0] = s1;
  if (n1 === 0) return 1;
  const [s2, n2] = segment(path, n1, len);
  if (s2 === undefined) return undefined;
  out[1] = s2;
  if (n2 === 0) return 2;
  const [s3, n3] = segment(path, n2, len);
  if (s3 === undefined) return undefined;
  out[2] = s3;
  if (n3 === 0) return 3;
  const [s4, n4] = segment(path, n3, len);
  if (s4 === undefined) return undefined;
  out[3] = s4;
  if (n4 === 0) return 4;
  const [s5, n5] = segment(path, n4, len);
  if (s5 === undefined) return undefined;
  out[4] = s5;
  return n5 === 0 ? 5 : undefined;
}

const seg: string[] = [];

/**
 * @param method upper-case HTTP method
 * @param path the path below the FHIR base, "" or starting with "/"; already checked by
 *   http/uri for encodings, dot segments and bad characters
 * @param types the R4 resource type set
 */
export function classify(method: string, path: string, types: LuaTable<string, boolean>): Result {
  if (KNOWN_METHODS[method] !== true) return fail("method");
  const n = split(path, seg);
  if (n === undefined) return fail("bad_path");
  if (n === 0) {
    if (isRead(method)) return ok("search-system", undefined, undefined, undefined, undefined, undefined);
    if (method === "POST") return ok("batch", undefined, undefined, undefined, undefined, undefined);
    return fail("method");
  }
  const s1 = seg[0]!;
  if (s1 === "metadata" || s1 === ".well-known" || s1 === "_history" || s1 === "_search" || sub(s1, 1, 1) === "$") return systemLevel(method, n, s1);
  if (!looksLikeType(s1)) return fail("bad_path");
  if (types.get(s1) !== true) return fail("unknown_type");
  if (n === 1) return typeLevel(method, s1);
  if (n === 2) return typeChild(method, s1, seg[1]!);
  return instanceChild(method, n, s1, seg[1]!, types);
}

/** `metadata`, `.well-known/smart-configuration`, `_history`, `_search` and `$op` at the base. */
function systemLevel(method: string, n: number, s1: string): Result {
  if (s1 === "metadata") {
    if (n !== 1) return fail("not_found");
    return isRead(method) ? ok("capabilities", undefined, undefined, undefined, undefined, undefined) : fail("method");
  }
  if (s1 === ".well-known") {
    if (n !== 2 || seg[1] !== "smart-configuration") return fail("not_found");
    return isRead(method) ? ok("smart-configuration", undefined, undefined, undefined, undefined, undefined) : fail("method");
  }
  if (s1 === "_history") {
    if (n !== 1) return fail("not_found");
    return isRead(method) ? ok("history-system", undefined, undefined, undefined, undefined, undefined) : fail("method");
  }
  if (s1 === "_search") {
    if (n !== 1) return fail("not_found");
    return isSearch(method) ? ok("search-system", undefined, undefined, undefined, undefined, undefined) : fail("method");
  }
  if (n !== 1) return fail("not_found");
  if (!isValidOperation(s1)) return fail("bad_operation");
  return isSearch(method) ? ok("operation-system", undefined, undefined, undefined, s1, undefined) : fail("method");
}

/** `Type`: search, create, or the conditional forms (criteria in the query) of update, patch, delete. */
function typeLevel(method: string, s1: string): Result {
  if (isRead(method)) return ok("search-type", s1, undefined, undefined, undefined, undefined);
  if (method === "POST") return ok("create", s1, undefined, undefined, undefined, undefined);
  if (method === "PUT") return ok("update", s1, undefined, undefined, undefined, undefined);
  if (method === "PATCH") return ok("patch", s1, undefined, undefined, undefined, undefined);
  return ok("delete", s1, undefined, undefined, undefined, undefined);
}

/** `Type/_search`, `Type/_history`, `Type/$op`, or `Type/id`. */
function typeChild(method: string, s1: string, s2: string): Result {
  if (s2 === "_search") {
    return isSearch(method) ? ok("search-type", s1, undefined, undefined, undefined, undefined) : fail("method");
  }
  if (s2 === "_history") {
    return isRead(method) ? ok("history-type", s1, undefined, undefined, undefined, undefined) : fail("method");
  }
  if (sub(s2, 1, 1) === "$") {
    if (!isValidOperation(s2)) return fail("bad_operation");
    return isSearch(method) ? ok("operation-type", s1, undefined, undefined, s2, undefined) : fail("method");
  }
  if (!isValidId(s2)) return fail("bad_id");
  if (isRead(method)) return ok("read", s1, s2, undefined, undefined, undefined);
  if (method === "PUT") return ok("update", s1, s2, undefined, undefined, undefined);
  if (method === "PATCH") return ok("patch", s1, s2, undefined, undefined, undefined);
  if (method === "DELETE") return ok("delete", s1, s2, undefined, undefined, undefined);
  return fail("method");
}

/** `Type/id/_history`, `Type/id/$op`, `Type/id/Type2` (a compartment search), `Type/id/_history/vid`. */
function instanceChild(method: string, n: number, s1: string, s2: string, types: LuaTable<string, boolean>): Result {
  if (!isValidId(s2)) return fail("bad_id");
  const s3 = seg[2]!;
  if (n === 3) {
    if (s3 === "_history") {
      return isRead(method) ? ok("history-instance", s1, s2, undefined, undefined, undefined) : fail("method");
    }
    if (sub(s3, 1, 1) === "$") {
      if (!isValidOperation(s3)) return fail("bad_operation");
      return isSearch(method) ? ok("operation-instance", s1, s2, undefined, s3, undefined) : fail("method");
    }
    if (s3 === "*" || (looksLikeType(s3) && types.get(s3) === true)) {
      return isRead(method) ? ok("search-compartment", s1, s2, undefined, undefined, s3) : fail("method");
    }
    return looksLikeType(s3) ? fail("unknown_type") : fail("bad_path");
  }
  if (n === 4 && s3 === "_history") {
    const s4 = seg[3]!;
    if (!isValidId(s4)) return fail("bad_id");
    return isRead(method) ? ok("vread", s1, s2, s4, undefined, undefined) : fail("method");
  }
  return fail("not_found");
}
