/**
 * SMART App Launch 2.x scopes, parsed once per token into permission masks (issue #5; not
 * wired into the request path yet). Pure: runs under plain LuaJIT.
 *
 *   v1: `patient|user|system / Type|* . read|write|*`
 *   v2: the same with `c r u d s` in that order, and optional granular constraints
 *       `?param=value[&param=value]`
 *   others: launch, launch/patient, launch/encounter, openid, fhirUser, profile,
 *           offline_access, online_access (no resource access)
 *
 * `%2F` stands for `/` (Entra ID issues scopes that way). v1 maps to v2 as SMART says:
 * read = rs, write = cud, * = cruds. A resource scope that does not parse (letters out of
 * order, unknown letters, an unknown type, a malformed constraint) grants nothing: it is
 * counted in `ignored` and remembered in `invalid`; a policy may then refuse the whole token.
 */
import type { PermissionContext } from "./permission";

export const C = 1;
export const R = 2;
export const U = 4;
export const D = 8;
export const S = 16;
export const ALL = 31;

/** Constraints of a granular scope: every (param, value) must be in the request, in AND. */
export interface Granular {
  readonly mask: number;
  readonly params: readonly (readonly [string, string])[];
}

export interface Grant {
  /** Permissions granted without constraints. */
  mask: number;
  /** Granular grants, unioned. */
  readonly granular: Granular[];
}

export interface ParsedScopes {
  /** By context, then by resource type or "*". */
  readonly grants: Record<PermissionContext, LuaTable<string, Grant>>;
  launchPatient: boolean;
  launchEncounter: boolean;
  launch: boolean;
  openid: boolean;
  fhirUser: boolean;
  offlineAccess: boolean;
  /** Resource scopes that did not parse and grant nothing. */
  ignored: number;
  /** The first scope that did not parse. A policy with `invalidScopes: "reject"` refuses the token for it. */
  invalid: string | undefined;
}

const match = string.match;
const gsub = string.gsub;
const find = string.find;
const sub = string.sub;

const V1: Record<string, number> = { read: R + S, write: C + U + D, "*": ALL };
const LETTER: Record<string, number> = { c: C, r: R, u: U, d: D, s: S };
const ORDER = "cruds";

/** v2 letters in canonical order, no repeats: `rs`, `cud`, `cruds`. 0 when not that. */
export function lettersMask(letters: string): number {
  if (letters === "" || letters.length > 5) return 0;
  let mask = 0;
  let from = 1;
  for (let i = 1; i <= letters.length; i++) {
    const ch = sub(letters, i, i);
    const bit = LETTER[ch];
    if (bit === undefined) return 0;
    const [at] = find(ORDER, ch, from, true);
    if (at === undefined) return 0;
    from = at + 1;
    mask = mask + bit;
  }
  return mask;
}

/** `a=1&b=2` into pairs; undefined when any part is not `name=value`. */
function parseConstraints(q: string): (readonly [string, string])[] | undefined {
  const out: (readonly [string, string])[] = [];
  let rest = q;
  while (rest !== "") {
    const [amp] = find(rest, "&", 1, true);
    const part = amp === undefined ? rest : sub(rest, 1, amp - 1);
    rest = amp === undefined ? "" : sub(rest, amp + 1);
    const [name, value] = match(part, "^([%w_%-%.:]+)=([^=]+)$");
    if (name === undefined || value === undefined) return undefined;
    out.push([name, value] as const);
    if (amp !== undefined && rest === "") return undefined;
  }
  return out.length === 0 ? undefined : out;
}

function newGrants(): Record<PermissionContext, LuaTable<string, Grant>> {
  return { patient: new LuaTable(), user: new LuaTable(), system: new LuaTable() };
}

function grant(table: LuaTable<string, Grant>, type: string): Grant {
  let g = table.get(type);
  if (g === undefined) {
    g = { mask: 0, granular: [] };
    table.set(type, g);
  }
  return g;
}

/**
 * Adds one resource scope; false when it does not parse. `types` holds the R4 resource type
 * names (a scope naming anything else grants nothing).
 */
function addResourceScope(p: ParsedScopes, scope: string, types: LuaTable<string, boolean>): boolean {
  const [ctx, type, perm, query] = match(scope, "^(%l+)/([%a*]+)%.([%a*]+)(.*)$");
  if (ctx === undefined || type === undefined || perm === undefined || query === undefined) return false;
  if (ctx !== "patient" && ctx !== "user" && ctx !== "system") return false;
  if (type !== "*" && types.get(type) !== true) return false;
  const v1 = V1[perm];
  const mask = v1 ?? lettersMask(perm);
  if (mask === 0) return false;
  const g = grant(p.grants[ctx], type);
  if (query === "") {
    g.mask = g.mask | mask;
    return true;
  }
  // Constraints are a v2 feature; `patient/Observation.read?x=y` is not a scope.
  if (v1 !== undefined || sub(query, 1, 1) !== "?") return false;
  const params = parseConstraints(sub(query, 2));
  if (params === undefined) return false;
  g.granular.push({ mask, params });
  return true;
}

/**
 * Parses a space-separated scope string. Never throws. `known`: other scopes the policy names
 * (a break-glass scope), which grant no resource access and are not counted as invalid.
 */
export function parseScopes(scope: string, types: LuaTable<string, boolean>, strict: boolean, known?: LuaTable<string, boolean>): ParsedScopes {
  const p: ParsedScopes = {
    grants: newGrants(),
    launchPatient: false,
    launchEncounter: false,
    launch: false,
    openid: false,
    fhirUser: false,
    offlineAccess: false,
    ignored: 0,
    invalid: undefined,
  };
  for (const [raw] of string.gmatch(scope, "[^ ]+")) {
    if (raw === undefined) continue;
    const [s] = gsub(raw, "%%2[Ff]", "/");
    if (s === "launch/patient") p.launchPatient = true;
    else if (s === "launch/encounter") p.launchEncounter = true;
    else if (s === "launch") p.launch = true;
    else if (s === "openid") p.openid = true;
    else if (s === "fhirUser") p.fhirUser = true;
    else if (s === "offline_access") p.offlineAccess = true;
    else if (s === "online_access" || s === "profile") {
      // Known, and grants no resource access.
    } else if (known !== undefined && known.get(s) === true) {
      // The policy's own, such as a break-glass scope: read by its step, not here.
    } else if (!addResourceScope(p, s, types)) {
      p.ignored = p.ignored + 1;
      if (p.invalid === undefined) p.invalid = s;
    }
  }
  return p;
}

const V2_OF_V1: Record<string, string> = { read: "rs", write: "cud", "*": "cruds" };

/** The v2 spelling of a v1 scope (`patient/Observation.read` -> `patient/Observation.rs`). */
export function toV2(scope: string): string {
  const [head, perm] = match(scope, "^(.+%.)(%a+)$");
  const [star] = match(scope, "^(.+%.)%*$");
  if (star !== undefined) return star + "cruds";
  if (head === undefined || perm === undefined) return scope;
  const v2 = V2_OF_V1[perm];
  return v2 === undefined ? scope : head + v2;
}
