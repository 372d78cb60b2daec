/**
 * Pipeline step 5, the request body (issue #16): what a request may carry, checked before
 * authorization looks inside it and before the upstream sees a byte.
 *
 * - GET, HEAD and DELETE carry no body.
 * - create, update, batch/transaction: a FHIR JSON body (application/fhir+json, or the
 *   application/json and application/json+fhir that clients also send), UTF-8, strict JSON
 *   (fhir/json), its resourceType the URL's type, and on an update by id its id the URL's id.
 * - patch: a JSON Patch (application/json-patch+json) that does not touch /id or
 *   /resourceType, or a FHIRPath Patch (Parameters) in FHIR JSON.
 * - POST _search: a form (application/x-www-form-urlencoded), or nothing.
 * - POST of an operation: nothing, or FHIR JSON.
 * XML is refused with a 415: the gateway cannot check it. A missing Content-Type on a body
 * is a 415 too. Conditional headers are held to their form here, for every tenant.
 *
 * The decoded body is kept on the request state, so the checks after this one parse nothing.
 * Here the cost model (fhir/cost) finishes what classification could not see: a batch costs
 * the sum of its entries, a POST _search what its form's parameters make it. A POST _search
 * form and If-None-Exist criteria are queries too: they get the canonical reading (http/query)
 * the URL's query gets, and the upstream receives that form.
 */
import * as gw from "../core/gateway";
import { OUT_OF_ORDER, refusal, type Refusal, type RequestState, type Verdict } from "../core/request";
import type { Classification, Interaction } from "./classify";
import { canonicalQuery } from "../http/query";
import { MAX_PARAMS, QUERY_REFUSAL } from "../http/safety";
import { bundleCost, searchCost } from "./cost";
import { decodeStrict, MAX_DEPTH, type JsonError } from "./json";

const ngxVar = ngx.var;
const req = ngx.req;
const find = string.find;
const lower = string.lower;
const match = string.match;

/** Built from bytes: a non-ASCII character in a TS string would reach Lua as UTF-8. */
const HIGH_BYTE = "[" + string.char(128) + "-" + string.char(255) + "]";

type Rule = "none" | "resource" | "patch" | "bundle" | "form" | "optional";
type Media = "json" | "json-patch" | "form" | "xml" | "missing" | "other";

const ACCEPT = "send application/fhir+json";
const NO_BODY = refusal(400, "invalid", "A GET, HEAD or DELETE request carries no body.");
const EMPTY = refusal(400, "invalid", "This interaction needs a request body.");
const ON_DISK = refusal(413, "too-costly", "The request body is too large to be checked.");
const NOT_UTF8 = refusal(400, "invalid", "The request body is not valid UTF-8.");
const NOT_OBJECT = refusal(400, "structure", "The request body is not a JSON object.");
const MISSING_TYPE = refusal(415, "not-supported", "The request body has no Content-Type; " + ACCEPT + ".");
const XML = refusal(415, "not-supported", "XML request bodies cannot be checked by this gateway; " + ACCEPT + ".");
const OTHER_TYPE = refusal(415, "not-supported", "The request body's Content-Type is not a FHIR JSON type; " + ACCEPT + ".");
const NOT_FORM = refusal(415, "not-supported", "A POST _search body must be application/x-www-form-urlencoded.");
const NOT_PATCH = refusal(415, "not-supported", "A patch body must be application/json-patch+json or a FHIRPath Patch in application/fhir+json.");
const WRONG_TYPE = refusal(400, "invalid", "The resourceType of the body does not match the resource type in the URL.");
const WRONG_ID = refusal(400, "invalid", "The id of the body does not match the id in the URL (an update must carry it).");
const NOT_BUNDLE = refusal(400, "invalid", "A POST to the FHIR base must be a batch or transaction Bundle.");
const PATCH_SHAPE = refusal(400, "invalid", "A JSON Patch is a list of operations, and may not replace the document or change /id or /resourceType.");
const TWO_TYPES = refusal(400, "invalid", "The request has more than one Content-Type header.");
const BAD_IF_MATCH = refusal(400, "invalid", "If-Match must be an ETag, such as W/\"1\".");
const IF_NONE_EXIST_ONLY_CREATE = refusal(400, "invalid", "If-None-Exist applies only to create.");
const NO_CRITERIA = refusal(400, "invalid", "A conditional update, patch or delete needs search criteria in the query.");
const PATCH_PARAMS = refusal(400, "invalid", "A FHIRPath Patch body is a Parameters resource.");
const JSON_REFUSAL: Record<JsonError, Refusal> = {
  syntax: refusal(400, "structure", "The request body is not valid JSON, or nests deeper than " + tostring(MAX_DEPTH) + " levels."),
  duplicate_key: refusal(400, "structure", "The request body has a duplicate key in an object."),
  control_character: refusal(400, "structure", "The request body has an unescaped control character in a string."),
};

const RULE: Partial<Record<Interaction, Rule>> = {
  "create": "resource",
  "update": "resource",
  "patch": "patch",
  "batch": "bundle",
  "search-type": "form",
  "search-system": "form",
  "operation-system": "optional",
  "operation-type": "optional",
  "operation-instance": "optional",
};

const MEDIA: Record<string, Media> = {
  "application/fhir+json": "json",
  "application/json": "json",
  "application/json+fhir": "json",
  "application/json-patch+json": "json-patch",
  "application/x-www-form-urlencoded": "form",
  "application/fhir+xml": "xml",
  "application/xml": "xml",
  "application/xml+fhir": "xml",
  "text/xml": "xml",
};

/** The media type, when every parameter is one the gateway reads right: UTF-8, FHIR R4. */
function mediaOf(header: string | undefined): Media {
  if (header === undefined || header === "") return "missing";
  const h = lower(header);
  const [semi] = find(h, ";", 1, true);
  const [base] = match(semi === undefined ? h : string.sub(h, 1, semi - 1), "^%s*(.-)%s*$");
  const m = base === undefined ? undefined : MEDIA[base];
  if (m === undefined) return "other";
  if (semi === undefined) return m;
  // Each `;` starts one parameter, and each must be one of the two, whole: anything the
  // pattern cannot read (no value, another name, stray characters) is refused, not skipped.
  for (const [param] of string.gmatch(string.sub(h, semi + 1) + ";", "([^;]*);")) {
    const [name, value] = match(param ?? "", '^%s*([%w%-]+)%s*=%s*"?([^";%s]*)"?%s*$');
    if (name === "charset" && value === "utf-8") continue;
    if (name === "fhirversion" && value !== undefined) {
      const [r4] = match(value, "^4%.0[%.%d]*$");
      if (r4 !== undefined) continue;
    }
    return "other";
  }
  return m;
}

function mediaRefusal(m: Media, rule: Rule): Refusal | undefined {
  if (rule === "form") return m === "form" ? undefined : NOT_FORM;
  if (m === "json") return undefined;
  if (m === "json-patch") return rule === "patch" ? undefined : OTHER_TYPE;
  if (m === "missing") return MISSING_TYPE;
  if (m === "xml") return XML;
  return rule === "patch" ? NOT_PATCH : OTHER_TYPE;
}

/** The body, read whole into memory (the conf sizes the buffer to the body limit). */
function readBody(): LuaMultiReturn<[string, undefined] | [undefined, Refusal]> {
  req.read_body();
  const body = req.get_body_data();
  if (body === undefined) return $multi(undefined, req.get_body_file() === undefined ? EMPTY : ON_DISK);
  // PCRE checks the whole subject as UTF-8 under "u" and matches nothing when it is not.
  const [high] = find(body, HIGH_BYTE);
  if (high !== undefined && ngx.re.find(body, "^", "ju")[0] === undefined) return $multi(undefined, NOT_UTF8);
  return $multi(body, undefined);
}

/** A JSON Pointer a patch may not write or move: the root, or anything at or below /id or /resourceType. */
function protectedPointer(p: unknown): boolean {
  if (typeof p !== "string") return false;
  if (p === "") return true;
  const [root] = match(p, "^/([^/]*)");
  return root === "id" || root === "resourceType";
}

function patchRefusal(doc: Record<string, unknown>, m: Media): Refusal | undefined {
  if (m !== "json-patch") return doc["resourceType"] === "Parameters" ? undefined : PATCH_PARAMS;
  const ops = doc as unknown as unknown[];
  if (ops[0] === undefined) return PATCH_SHAPE;
  for (const op of ops) {
    if (type(op) !== "table") return PATCH_SHAPE;
    const o = op as Record<string, unknown>;
    if (typeof o["path"] !== "string" || protectedPointer(o["path"])) return PATCH_SHAPE;
    // A move takes its value away from `from`; a copy reading the root is a document swap too.
    if (o["op"] === "move" && protectedPointer(o["from"])) return PATCH_SHAPE;
    if (o["op"] === "copy" && o["from"] === "") return PATCH_SHAPE;
  }
  return undefined;
}

function shapeRefusal(c: Classification, doc: Record<string, unknown>, rule: Rule, m: Media): Refusal | undefined {
  if (rule === "resource") {
    if (doc["resourceType"] !== c.resource_type) return WRONG_TYPE;
    if (c.interaction === "update" && c.id !== undefined && doc["id"] !== c.id) return WRONG_ID;
    return undefined;
  }
  if (rule === "bundle") {
    const t = doc["type"];
    return doc["resourceType"] === "Bundle" && (t === "batch" || t === "transaction") ? undefined : NOT_BUNDLE;
  }
  if (rule === "patch") return patchRefusal(doc, m);
  return undefined;
}

/**
 * The conditional headers of a write, as headers: If-None-Exist only on a create, If-Match an
 * ETag, and a type-level update, patch or delete with criteria. What the criteria may search
 * is the scopes' business (scopes/step).
 */
function conditionalRefusal(st: RequestState, i: Interaction, id: string | undefined): Refusal | undefined {
  if (i !== "update" && i !== "patch" && i !== "delete") return undefined;
  if (ngxVar.http_if_none_exist !== undefined) return IF_NONE_EXIST_ONLY_CREATE;
  const ifMatch = ngxVar.http_if_match;
  if (ifMatch !== undefined) {
    const opaque = string.sub(ifMatch, 1, 2) === "W/" ? string.sub(ifMatch, 3) : ifMatch;
    const [etag] = match(opaque, '^"[^"]*"$');
    if (etag === undefined) return BAD_IF_MATCH;
  }
  if (id === undefined && (st.args === undefined || st.args === "")) return NO_CRITERIA;
  return undefined;
}

export function checkBody(st: RequestState): Verdict {
  const c = st.c;
  if (c === undefined) return OUT_OF_ORDER;
  const method = st.method;
  const has = ngxVar.fe_has_body === "1";
  if (method === "GET" || method === "HEAD") return has ? NO_BODY : undefined;
  const conditional = c.interaction === "create" ? checkIfNoneExist() : conditionalRefusal(st, c.interaction, c.id);
  if (conditional !== undefined) return conditional;
  if (method === "DELETE") return has ? NO_BODY : undefined;
  const rule = RULE[c.interaction] ?? "none";
  if (!has) return rule === "form" || rule === "optional" ? undefined : EMPTY;
  if (rule === "none") return NO_BODY;
  // nginx reads the first of two Content-Type headers; an upstream may read the other.
  const [headers] = req.get_headers(100);
  if (type(headers["content-type"]) === "table") return TWO_TYPES;
  const m = mediaOf(ngxVar.http_content_type);
  const bad = mediaRefusal(m, rule);
  if (bad !== undefined) return bad;
  if (rule === "form") return checkForm(st, c);
  const [body, err] = readBody();
  if (body === undefined) return err;
  const [doc, jerr] = decodeStrict(body);
  if (jerr !== undefined) return JSON_REFUSAL[jerr];
  if (type(doc) !== "table") return NOT_OBJECT;
  const shape = shapeRefusal(c, doc as Record<string, unknown>, rule, m);
  if (shape !== undefined) return shape;
  st.doc = doc as Record<string, unknown>;
  if (rule === "bundle" && priced(st)) {
    const byClass = new LuaTable<string, number>();
    c.cost = bundleCost(st.doc, gw.resourceTypes, st.tenant!, gw.routeCost, byClass);
    c.class_costs = byClass;
  }
  return undefined;
}

/** The cost model prices this request here: a budget of the tenant reads it, and no route sets it. */
function priced(st: RequestState): boolean {
  return st.tenant!.budgets.length > 0 && (st.route === undefined || st.route.cost === undefined);
}

/**
 * A POST _search form: the canonical reading of its parameters (the scope checks' get_post_args
 * and the upstream then read that form), and the cost its query and form make together.
 */
function checkForm(st: RequestState, c: Classification): Verdict {
  req.read_body();
  const form = req.get_body_data();
  if (form === undefined) return req.get_body_file() === undefined ? undefined : ON_DISK;
  const [canon, qerr] = canonicalQuery(form, MAX_PARAMS);
  if (canon === undefined) return QUERY_REFUSAL[qerr!];
  if (canon !== form) req.set_body_data(canon);
  if (canon === "" || !priced(st)) return undefined;
  const args = st.args;
  c.cost = searchCost(args === undefined || args === "" ? canon : args + "&" + canon, st.tenant!.costs);
  return undefined;
}

/** If-None-Exist criteria get the canonical reading too; the upstream receives that form. */
function checkIfNoneExist(): Verdict {
  const criteria = ngxVar.http_if_none_exist;
  if (criteria === undefined) return undefined;
  const [canon, qerr] = canonicalQuery(criteria, MAX_PARAMS);
  if (canon === undefined) return QUERY_REFUSAL[qerr!];
  if (canon !== criteria) req.set_header("If-None-Exist", canon);
  return undefined;
}
