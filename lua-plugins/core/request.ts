/**
 * What the access pipeline knows about one request, and what each of its steps returns.
 *
 * One plain table per request, filled in as the steps run (not ngx.ctx: the first ngx.ctx
 * access per request allocates and registers a table, and nothing after the access phase
 * needs it; the log phase and the conf read the `$fe_*` variables of core/vars).
 */
import type { CompiledRoute } from "./gateway";
import type { IssueCode, IssueDetail } from "./outcome";
import type { Identity } from "../auth/cache";
import type { Classification } from "../fhir/classify";
import type { TenantIR } from "../generated/policy";
import type { ResponseCheck, WriteCheck } from "../scopes/authorize";

/** A step's refusal: what the client is told. Made into an OperationOutcome in one place (phases/access). */
export interface Refusal {
  readonly status: number;
  readonly code: IssueCode;
  /** A fixed sentence; nothing from the request is echoed. */
  readonly message: string;
  /** WWW-Authenticate, Retry-After, Allow... */
  readonly headers?: Readonly<Record<string, string>>;
  /** Several issues in one outcome (a Bundle's denied entries); `message` is then unused. */
  readonly issues?: readonly IssueDetail[];
}

/** What a step returns: undefined to go on to the next step, or the refusal that ends the request. */
export type Verdict = Refusal | undefined;

export function refusal(status: number, code: IssueCode, message: string, headers?: Readonly<Record<string, string>>): Refusal {
  return { status, code, message, headers };
}

export interface RequestState {
  readonly method: string;
  /** The raw request target, as the client sent it. */
  readonly target: string;
  path: string;
  /** Host header without port, lower-cased; undefined when absent. */
  host: string | undefined;
  /** The raw query string, without `?`; undefined when there is none. */
  args: string | undefined;
  tenant: TenantIR | undefined;
  /** The path below the tenant's FHIR base ("" or "/..."). */
  fhirPath: string;
  c: Classification | undefined;
  route: CompiledRoute | undefined;
  /** The validated token's identity; undefined for anonymous tenants and public interactions. */
  id: Identity | undefined;
  /** Authorization in shadow mode: denials are counted and the request goes on. */
  shadow: boolean;
  /** In shadow mode, the code of the refusal that enforcement would have made (for the audit event). */
  shadowed: string | undefined;
  /** `name=value` added to the query upstream (a compartment search that named no patient). */
  inject: string | undefined;
  write: WriteCheck | undefined;
  check: ResponseCheck | undefined;
  /** The write body, decoded once by the strict JSON front (fhir/body); undefined without one. */
  doc: Record<string, unknown> | undefined;
  /** Path and query sent upstream (routing/setUpstream); "" before that step. */
  upstream: string;
  /**
   * Where the request goes on (cache/step): a cache location (`/__fe_cache/<n>`, with
   * `/checked` for a checked read) or the write location; undefined for the plain proxying.
   */
  via: string | undefined;
  /** The break-glass reason the request gave, when it is one of the tenant's codes (breakglass/step). */
  breakGlass: string | undefined;
  /** The token may break glass, and this request does. */
  glassBroken: boolean;
}

export function newRequest(method: string, target: string): RequestState {
  return {
    method,
    target,
    path: target,
    host: undefined,
    args: undefined,
    tenant: undefined,
    fhirPath: "",
    c: undefined,
    route: undefined,
    id: undefined,
    shadow: false,
    shadowed: undefined,
    inject: undefined,
    write: undefined,
    check: undefined,
    doc: undefined,
    upstream: "",
    via: undefined,
    breakGlass: undefined,
    glassBroken: false,
  };
}

/** A step that runs before the one that fills in what it needs: a bug, refused rather than guessed. */
export const OUT_OF_ORDER: Refusal = { status: 500, code: "exception", message: "The gateway failed to process the request." };
