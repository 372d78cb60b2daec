/**
 * Safety checks on the raw request target, before anything interprets it. Pure (no ngx calls).
 *
 * The gateway decides on the bytes the client sent (`$request_uri`), not on nginx's normalised
 * `$uri`: an upstream may decode or normalise differently, so any form with two readings is
 * refused. FHIR paths need no percent-encoding at all (ids are [A-Za-z0-9-.], types are
 * letters, operations are `$name`), so a `%` in the path is refused outright.
 */
import { contains, matches } from "../core/str";
const find = string.find;

export type UriError = "bad_char" | "encoded" | "dot_segment" | "empty_segment";

/** Characters allowed in a path: RFC 3986 pchar minus `%`, plus `/`. */
const PATH_BAD = "[^%w%-%._~!%$&'%(%)%*%+,;=:@/]";

export function checkPath(path: string): UriError | undefined {
  // One class scan decides the common case; `%` is outside the class, so an encoded path is
  // found by the same scan and only then told apart.
  if (matches(path, PATH_BAD)) return contains(path, "%") ? "encoded" : "bad_char";
  if (contains(path, "//")) return "empty_segment";
  // Plain find first: the dot-segment patterns run only for paths that have a "/.".
  if (contains(path, "/.") && (matches(path, "/%.%.?/") || matches(path, "/%.%.?$"))) return "dot_segment";
  return undefined;
}


/** Split `$request_uri` into path and query (query without the `?`, or undefined). */
export function splitTarget(target: string): LuaMultiReturn<[string, string | undefined]> {
  const [q] = find(target, "?", 1, true);
  if (q === undefined) return $multi(target, undefined);
  return $multi(string.sub(target, 1, q - 1), string.sub(target, q + 1));
}
