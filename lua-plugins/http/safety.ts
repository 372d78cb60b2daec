/**
 * Pipeline step 1, safety: the raw request target and Host, before anything interprets them.
 * A form with two readings is refused (see http/uri), and so is a method FHIR does not use, or
 * a header name nginx would otherwise drop without a word (http/headers).
 */
import { refusal, type RequestState, type Verdict } from "../core/request";
import { isSupportedMethod } from "../fhir/classify";
import { normalizeHost } from "../routing/tenant";
import { checkPath, checkQuery, splitTarget } from "./uri";
import { checkHeaderNames, MAX_HEADERS } from "./headers";

/** Longest request target accepted (nginx's header buffers are larger, for long tokens). */
const MAX_URI = 8192;

export const ALLOW = { Allow: "GET, HEAD, POST, PUT, PATCH, DELETE" };

const TOO_LONG = refusal(414, "too-long", "The request URI is too long.");
const BAD_PATH = refusal(400, "invalid", "The request path has an encoded, empty or dot segment, or a character FHIR paths do not use.");
const BAD_QUERY = refusal(400, "invalid", "The query string holds a NUL or control character.");
const BAD_METHOD = refusal(405, "not-supported", "The method is not supported by this FHIR gateway.", ALLOW);
const BAD_HOST = refusal(400, "invalid", "The Host header is malformed.");
const BAD_HEADER_NAME = refusal(400, "invalid", "A request header name holds a character other than letters, digits and '-'.");
const TOO_MANY_HEADERS = refusal(400, "invalid", "The request has more than " + tostring(MAX_HEADERS) + " headers.");

const ngxVar = ngx.var;

export function checkSafety(st: RequestState): Verdict {
  if (st.target.length > MAX_URI) return TOO_LONG;
  const [path, args] = splitTarget(st.target);
  if (checkPath(path) !== undefined) return BAD_PATH;
  if (args !== undefined && checkQuery(args) !== undefined) return BAD_QUERY;
  if (!isSupportedMethod(st.method)) return BAD_METHOD;
  const rawHost = ngxVar.http_host;
  const host = normalizeHost(rawHost);
  if (rawHost !== undefined && host === undefined) return BAD_HOST;
  const names = checkHeaderNames();
  if (names !== undefined) return names === "name" ? BAD_HEADER_NAME : TOO_MANY_HEADERS;
  st.host = host;
  st.path = path;
  st.args = args;
  return undefined;
}
