/**
 * Whether an upstream response may be stored, from its headers as nginx will send them
 * (phases/cache.stored, the cache locations' header filter). In Lua rather than a conf map:
 * nginx 1.22's `$upstream_http_*` is the first of repeated headers only, so an upstream that
 * sends `Cache-Control: public` and then `Cache-Control: private` would be stored. Pure, so it
 * runs (and is tested) under plain LuaJIT.
 */
const lower = string.lower;
const find = string.find;
const sub = string.sub;
const gmatch = string.gmatch;

/** Directives that keep a response out of a shared cache. */
const PRIVATE: Record<string, boolean> = { "no-store": true, "private": true, "no-cache": true };

/** The FHIR representations the cache stores (parameters aside). */
const STORED_TYPES: Record<string, boolean> = {
  "application/fhir+json": true,
  "application/fhir+xml": true,
  "application/json": true,
  "application/json+fhir": true,
  "application/xml+fhir": true,
};

function privateIn(value: string): boolean {
  for (const [part] of gmatch(lower(value), "[^,]+")) {
    if (part === undefined) continue;
    const [, , name] = find(part, "^%s*([%w%-]+)");
    if (name !== undefined && PRIVATE[name as string] === true) return true;
  }
  return false;
}

/** Some Cache-Control header says no-store, private or no-cache. */
export function isPrivate(cacheControl: string | string[] | undefined): boolean {
  if (cacheControl === undefined) return false;
  if (typeof cacheControl === "string") return privateIn(cacheControl);
  for (const v of cacheControl) if (privateIn(v)) return true;
  return false;
}

/** The Content-Type nginx sends is FHIR JSON or XML. */
export function isStoredType(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== "string") return false;
  const [semi] = find(contentType, ";", 1, true);
  const base = semi === undefined ? contentType : sub(contentType, 1, semi - 1);
  const [, , trimmed] = find(lower(base), "^%s*(.-)%s*$");
  return trimmed !== undefined && STORED_TYPES[trimmed as string] === true;
}

/**
 * Whether nginx will store this response at all: a 200 (or a 404 where the location caches
 * them), no Set-Cookie, a Content-Length within the cap, a FHIR type, no private Cache-Control.
 * What it will not store is remembered for a while (hit-for-pass, phases/cache), so requests
 * of the key skip the cache lock: its waiters poll every 500 ms, and for a response that is
 * never stored every concurrent request of the key would wait for nothing.
 */
export function storable(status: number, notFound: boolean, setCookie: unknown, length: string | string[] | undefined, maxEntry: number): boolean {
  if (status !== 200 && !(status === 404 && notFound)) return false;
  if (setCookie !== undefined) return false;
  if (typeof length !== "string") return false;
  const n = tonumber(length);
  return n !== undefined && n <= maxEntry;
}
