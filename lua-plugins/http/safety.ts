/**
 * Pipeline step 1, safety: the raw request target and Host, before anything interprets them.
 * A form with two readings is refused (see http/uri), and so is a method FHIR does not use, or
 * a header name nginx would otherwise drop without a word (http/headers). The query becomes its
 * canonical form (http/query), the only one every later step, and the upstream, sees.
 */
import { refusal, type Refusal, type RequestState, type Verdict } from "../core/request";
import { isSupportedMethod } from "../fhir/classify";
import { normalizeHost } from "../routing/tenant";
import * as policy from "../generated/policy";
import { canonicalQuery, MAX_NAME, type QueryError } from "./query";
import { checkPath, splitTarget } from "./uri";
import { checkHeaderNames, MAX_HEADERS } from "./headers";

/** Longest request target accepted (nginx's header buffers are larger, for long tokens). */
const MAX_URI = 8192;

export const ALLOW = { Allow: "GET, HEAD, POST, PUT, PATCH, DELETE" };

const TOO_LONG = refusal(414, "too-long", "The request URI is too long.");
const BAD_PATH = refusal(400, "invalid", "The request path has an encoded, empty or dot segment, or a character FHIR paths do not use.");
export const MAX_PARAMS = policy.limits.max_query_params;
/** A query (or a form body, or If-None-Exist criteria) the canonical reading refuses. */
export const QUERY_REFUSAL: Record<QueryError, Refusal> = {
  bad_percent: refusal(400, "invalid", "The query string has a % that is not followed by two hex digits."),
  double_encoded: refusal(400, "invalid", "The query string is encoded twice (%25 followed by two hex digits)."),
  control: refusal(400, "invalid", "The query string holds a NUL or control character."),
  bad_utf8: refusal(400, "invalid", "The query string does not decode to UTF-8."),
  semicolon: refusal(400, "invalid", "The query string uses ';', which some servers read as a separator; encode it as %3B."),
  empty_name: refusal(400, "invalid", "A query parameter has no name."),
  long_name: refusal(400, "invalid", "A query parameter name is longer than " + tostring(MAX_NAME) + " bytes."),
  too_many: refusal(400, "invalid", "The query has more than " + tostring(MAX_PARAMS) + " parameters."),
  repeated: refusal(400, "invalid", "One of _count, _format, _sort, _summary or _elements is given twice."),
  bad_count: refusal(400, "invalid", "_count must be a non-negative integer."),
};
const BAD_METHOD = refusal(405, "not-supported", "The method is not supported by this FHIR gateway.", ALLOW);
const BAD_HOST = refusal(400, "invalid", "The Host header is malformed.");
const BAD_HEADER_NAME = refusal(400, "invalid", "A request header name holds a character other than letters, digits and '-'.");
const TOO_MANY_HEADERS = refusal(400, "invalid", "The request has more than " + tostring(MAX_HEADERS) + " headers.");

const ngxVar = ngx.var;

export function checkSafety(st: RequestState): Verdict {
  if (st.target.length > MAX_URI) return TOO_LONG;
  const [path, args] = splitTarget(st.target);
  if (checkPath(path) !== undefined) return BAD_PATH;
  let query = args;
  if (args !== undefined) {
    const [canon, qerr] = canonicalQuery(args, MAX_PARAMS);
    if (canon === undefined) return QUERY_REFUSAL[qerr!];
    // get_uri_args (the scope checks) parses $args: it must be the canonical form too.
    if (canon !== args) ngx.req.set_uri_args(canon);
    query = canon;
  }
  if (!isSupportedMethod(st.method)) return BAD_METHOD;
  const rawHost = ngxVar.http_host;
  const host = normalizeHost(rawHost);
  if (rawHost !== undefined && host === undefined) return BAD_HOST;
  const names = checkHeaderNames();
  if (names !== undefined) return names === "name" ? BAD_HEADER_NAME : TOO_MANY_HEADERS;
  st.host = host;
  st.path = path;
  st.args = query;
  return undefined;
}
