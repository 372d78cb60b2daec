/**
 * From a classified request to a scope decision (issue #5; not wired yet). Pure.
 *
 * SMART App Launch 2.x, "Scopes for requesting clinical data":
 * - read, vread, instance history -> r; type and system search (GET, and POST _search),
 *   type and system history -> s; create -> c; update and patch -> u; delete -> d.
 * - metadata and .well-known/smart-configuration are public.
 * - Operations and batch/transaction are decided elsewhere (per operation in policy, per entry).
 * - Scopes combine as a union. An unconstrained grant on the type or on `*` allows; otherwise
 *   a granular grant allows a search only when the request carries each of its constraints,
 *   and a read only subject to a check of the response.
 */
import { C, D, R, S, U, type Grant, type Granular, type ParsedScopes } from "./scope";

export type PermissionContext = "patient" | "user" | "system";

/** Permission bit an interaction needs; 0: public; -1: decided elsewhere (operations, Bundles). */
export const INTERACTION_PERMISSION: Record<string, number> = {
  "read": R,
  "vread": R,
  "history-instance": R,
  "search-type": S,
  "search-system": S,
  "search-compartment": S,
  "history-type": S,
  "history-system": S,
  "create": C,
  "update": U,
  "patch": U,
  "delete": D,
  "capabilities": 0,
  "smart-configuration": 0,
  "operation-system": -1,
  "operation-type": -1,
  "operation-instance": -1,
  "batch": -1,
  "transaction": -1,
};

export function requiredPermission(interaction: string): number {
  return INTERACTION_PERMISSION[interaction] ?? -1;
}

/** Request query parameters: name -> every value given (repeats are AND in FHIR search). */
export type SearchArgs = Record<string, string[]>;

export interface Decision {
  readonly allow: boolean;
  /** The context whose grant decided it (system before user before patient). */
  readonly via: PermissionContext | undefined;
  /**
   * Only granular grants allow it: for a read, the response must satisfy one of these; for a
   * search, the one the request satisfied.
   */
  readonly granular: readonly Granular[] | undefined;
  /** For the 403: the permission that was missing, e.g. "patient/Observation.s". */
  readonly missing: string | undefined;
}

const CONTEXTS: readonly PermissionContext[] = ["system", "user", "patient"];
const LETTERS: Record<number, string> = { [C]: "c", [R]: "r", [U]: "u", [D]: "d", [S]: "s" };

function carries(args: SearchArgs | undefined, g: Granular): boolean {
  if (args === undefined) return false;
  for (const [name, value] of g.params) {
    const values = args[name];
    if (values === undefined) return false;
    let found = false;
    for (const v of values) {
      if (v === value) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

function collect(g: Grant | undefined, perm: number, into: Granular[]): void {
  if (g === undefined) return;
  for (const gr of g.granular) if ((gr.mask & perm) !== 0) into.push(gr);
}

/** The context to name in a 403: the token's own kind of resource scopes, patient first. */
function hintContext(p: ParsedScopes): PermissionContext {
  for (const ctx of ["patient", "user", "system"] as const) {
    if (next(p.grants[ctx])[0] !== undefined) return ctx;
  }
  return "patient";
}

function deny(p: ParsedScopes, type: string, perm: number): Decision {
  return { allow: false, via: undefined, granular: undefined, missing: hintContext(p) + "/" + type + "." + (LETTERS[perm] ?? "?") };
}

/**
 * May the token do `perm` on `type`? `args` are the search parameters (for granular grants on
 * searches); undefined for interactions without any.
 */
export function decide(p: ParsedScopes, type: string, perm: number, args: SearchArgs | undefined): Decision {
  for (const ctx of CONTEXTS) {
    const t = p.grants[ctx].get(type);
    const star = p.grants[ctx].get("*");
    const mask = (t?.mask ?? 0) | (star?.mask ?? 0);
    if ((mask & perm) !== 0) return { allow: true, via: ctx, granular: undefined, missing: undefined };
  }
  for (const ctx of CONTEXTS) {
    const candidates: Granular[] = [];
    // Two lookups, not an array literal: a Lua array with a nil first element has length 0.
    collect(p.grants[ctx].get(type), perm, candidates);
    collect(p.grants[ctx].get("*"), perm, candidates);
    if (candidates.length === 0) continue;
    if (perm === S) {
      for (const gr of candidates) if (carries(args, gr)) return { allow: true, via: ctx, granular: [gr], missing: undefined };
    } else if (perm === R) {
      return { allow: true, via: ctx, granular: candidates, missing: undefined };
    }
  }
  return deny(p, type, perm);
}
