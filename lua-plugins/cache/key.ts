/**
 * The cache key's parts that need no request state: the representation, whether a search reads
 * other types, and the key material, hashed once. Pure but for the FFI SHA-256, so it runs
 * (and is tested) under plain LuaJIT too.
 */
import { sha256 } from "../auth/crypto";
import { isComplex } from "../fhir/cost";

const find = string.find;
const sub = string.sub;
const lower = string.lower;

export type Representation = "json" | "xml";

/** The Accept the cache sends upstream for each representation. */
export const ACCEPT: Record<Representation, string> = { json: "application/fhir+json", xml: "application/fhir+xml" };

/** What one `_format` or Accept value asks for; undefined when it is neither JSON nor XML, or both. */
function kindOf(v: string): Representation | undefined {
  const s = lower(v);
  const [json] = find(s, "json", 1, true);
  const [xml] = find(s, "xml", 1, true);
  if (json !== undefined && xml === undefined) return "json";
  if (xml !== undefined && json === undefined) return "xml";
  return undefined;
}

/** The value of `_format` in a canonical query (it is never repeated there), or undefined. */
export function formatOf(query: string | undefined): string | undefined {
  if (query === undefined) return undefined;
  let at: number | undefined;
  if (sub(query, 1, 8) === "_format=") at = 9;
  else {
    const [i] = find(query, "&_format=", 1, true);
    if (i !== undefined) at = i + 9;
  }
  if (at === undefined) return undefined;
  const [amp] = find(query, "&", at, true);
  return sub(query, at, amp === undefined ? query.length : amp - 1);
}

/**
 * JSON or XML, as the upstream will answer: `_format` when the query has it, else Accept
 * (none, or `*` + `/` + `*`, is JSON, a FHIR server's default). Undefined when neither says one
 * of them: the response is not cached, since the key could not name what it holds.
 */
export function representation(format: string | undefined, accept: string | undefined): Representation | undefined {
  if (format !== undefined) return kindOf(format);
  if (accept === undefined || accept === "" || accept === "*/*") return "json";
  return kindOf(accept);
}

/**
 * Whether a search's results depend on other types than its own: `_include`, `_revinclude`,
 * `_has` or a chained parameter (a `.` in the name). Names are canonical (decoded) here.
 */
export function readsOtherTypes(query: string | undefined): boolean {
  if (query === undefined || query === "") return false;
  let start = 1;
  const n = query.length;
  while (start <= n) {
    const [amp] = find(query, "&", start, true);
    const stop = amp === undefined ? n : amp - 1;
    const [eq] = find(query, "=", start, true);
    const nameEnd = eq === undefined || eq > stop ? stop : eq - 1;
    if (isComplex(sub(query, start, nameEnd))) return true;
    start = stop + 2;
  }
  return false;
}

/**
 * The key: every part that decides what the upstream answers and who may see it. The parts a
 * client or a token controls (the partition, the URI) are length-prefixed, so no two different
 * sets of parts give the same material; the others come from the policy and fixed alphabets.
 * Hashed once, with the FFI SHA-256: 32 raw bytes.
 */
export function cacheKey(version: string, tenant: string, partition: string, gen: string, method: string, uri: string, repr: Representation): string {
  const material = version + "\n" + tenant + "\n" + tostring(partition.length) + ":" + partition + "\n" + gen + "\n" + method + "\n" + tostring(uri.length) + ":" + uri + "\n" + repr;
  return sha256(material);
}
