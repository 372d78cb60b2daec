/**
 * The audit event of a request (README "Events"), built without a JSON encoder in two halves:
 * the access phase writes what the pipeline knows into `$fe_audit` (a `set` variable, so it
 * survives the internal redirect to the error page and to the cache locations), and the log
 * phase wraps it with what only the end knows. Nothing from the client goes in unescaped; the
 * canonical query's names are percent-encoded already, ids and codes are validated.
 *
 * Per token, the identity's part is built once and kept on the cached identity.
 */
import * as gw from "../core/gateway";
import type { Refusal, RequestState } from "../core/request";
import type { Identity } from "../auth/cache";
import * as policy from "../generated/policy";
import { hmacSha256, sha256, toHex } from "../auth/crypto";
import { auditKey } from "./key";
import { writeNow } from "./writer";
import { matches } from "../core/str";

const ngxVar = ngx.var;
const find = string.find;
const sub = string.sub;
const gsub = string.gsub;
const format = string.format;
const floor = math.floor;

export const auditing: boolean = policy.audit !== undefined;
const hashValues = policy.audit !== undefined && policy.audit.query_values === "hmac";

const ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };
/**
 * Every byte the escape pattern matches, with its escape, made once with the same pattern: gsub
 * with a table replaces in C, where a function was a call into Lua per match (the RateLimit
 * field's quotes, on every event).
 */
const ESCAPED = new LuaTable<string, string>();
for (let b = 0; b < 256; b++) {
  const c = string.char(b);
  if (matches(c, '[%c"\\]')) ESCAPED.set(c, ESCAPES[c] ?? format("\\u%04x", b));
}

/** A JSON string's body: quotes, backslashes and control bytes escaped. */
export function esc(s: string): string {
  if (!matches(s, '[%c"\\]')) return s;
  const [out] = gsub(s, '[%c"\\]', ESCAPED as unknown as Record<string, string>);
  return out;
}

interface Audited {
  audit_part?: string;
  audit_patient?: string;
}

/** A route's id, escaped once per route (ids are policy data, not validated to be JSON-safe). */
const routeIds = new LuaTable<string, string>();
function routeId(id: string): string {
  let e = routeIds.get(id);
  if (e === undefined) {
    e = esc(id);
    routeIds.set(id, e);
  }
  return e;
}

/** The methods nginx parses, as themselves; any other all-capitals token too, checked by pattern. */
const METHODS: Record<string, boolean> = { GET: true, HEAD: true, POST: true, PUT: true, PATCH: true, DELETE: true, OPTIONS: true, TRACE: true, CONNECT: true };
function method(m: string): string {
  return METHODS[m] === true || matches(m, "^%u+$") ? m : "OTHER";
}

/** `Practitioner` of `https://x/fhir/Practitioner/12` or `Practitioner/12`: the type, never the id. */
function userType(fhirUser: string): string | undefined {
  const [, , t] = find(fhirUser, "([A-Z][A-Za-z]+)/[^/]+$");
  return t as string | undefined;
}

function identityPart(id: Identity): string {
  const memo = (id as unknown as Audited).audit_part;
  if (memo !== undefined) return memo;
  let s = ',"issuer":"' + esc(id.issuer) + '"';
  if (id.sub !== undefined) s = s + ',"sub":"' + esc(id.sub) + '"';
  if (id.client_id !== undefined) s = s + ',"client_id":"' + esc(id.client_id) + '"';
  const ut = id.fhir_user === undefined ? undefined : userType(id.fhir_user);
  if (ut !== undefined) s = s + ',"fhir_user_type":"' + ut + '"';
  s = s + ',"token_id":"' + id.tid + '"';
  if (id.scope !== "") s = s + ',"scope":"' + esc(id.scope) + '"';
  (id as unknown as Audited).audit_part = s;
  if (id.patient !== undefined) (id as unknown as Audited).audit_patient = esc(id.patient);
  return s;
}

function valueHmac(v: string): string {
  return sub(toHex(hmacSha256(auditKey(), v)), 1, 32);
}

/** `,"params":[{"name":"a"},...]` of the canonical query (names only, or with value HMACs). */
function paramsPart(args: string | undefined): string {
  if (args === undefined || args === "") return "";
  let out = ',"params":[';
  let at = 1;
  let first = true;
  const n = args.length;
  while (at <= n) {
    let [amp] = find(args, "&", at, true);
    if (amp === undefined) amp = n + 1;
    const piece = sub(args, at, amp - 1);
    if (piece !== "") {
      const [eq] = find(piece, "=", 1, true);
      const name = eq === undefined ? piece : sub(piece, 1, eq - 1);
      // Canonical names are percent-encoded: no quote, backslash or control byte is left.
      out = out + (first ? "" : ",") + '{"name":"' + name + '"' + (hashValues ? ',"hmac":"' + valueHmac(eq === undefined ? "" : sub(piece, eq + 1)) + '"' : "") + "}";
      first = false;
    }
    at = amp + 1;
  }
  return first ? "" : out + "]";
}

const NO_GLASS = ',"break_glass":false';

/**
 * The line's parts, put in one reused buffer and joined once. TSTL prints `a + b + c` as
 * `(a .. b) .. c`, and `s = s + ...` field by field is the same: a new string per part, each
 * copying the growing line (about 4 KB of garbage per event, the trail's largest GC cost).
 * One builder at a time: neither user calls the other while building.
 */
const buf = new LuaTable<number, string>();
let parts = 0;
const concat = table.concat;
function put(s: string): void {
  parts = parts + 1;
  buf.set(parts, s);
}
/** `<open><value>"`: a string field, its opening (`,"name":"`) a constant. */
function quoted(open: string, value: string): void {
  put(open);
  put(value);
  put('"');
}
function joined(): string {
  const n = parts;
  parts = 0;
  return concat(buf as unknown as string[], "", 1, n);
}

/** The pipeline's half of the event: tenant ... decision, break-glass (README order). */
function fragment(st: RequestState, decision: string, reason: string | undefined): string {
  const tenant = st.tenant;
  parts = 0;
  quoted('"tenant":"', tenant === undefined ? "none" : tenant.id);
  quoted(',"method":"', method(st.method));
  const c = st.c;
  // Escaped already: a validated id from the path, or the token's, escaped with its identity.
  let patient: string | undefined;
  if (c !== undefined) {
    quoted(',"interaction":"', c.interaction);
    const rt = c.resource_type;
    if (rt !== undefined) quoted(',"resource_type":"', rt);
    if (c.id !== undefined) {
      quoted(',"resource_id":"', c.id);
      if (rt === "Patient") patient = c.id;
    }
    if (c.operation !== undefined) quoted(',"operation":"', esc(c.operation));
    const route = st.route;
    if (route !== undefined) quoted(',"route":"', routeId(route.id));
    put(paramsPart(st.args));
  }
  const id = st.id;
  if (id !== undefined) {
    put(identityPart(id));
    const p = (id as unknown as Audited).audit_patient;
    if (p !== undefined) patient = p;
  }
  if (patient !== undefined) quoted(',"patient":"', patient);
  quoted(',"decision":"', decision);
  if (reason !== undefined) quoted(',"reason":"', reason);
  // A policy-listed code (breakglass/step), given whether or not the token could break glass.
  const glass = st.breakGlass;
  put(st.glassBroken ? ',"break_glass":true' : NO_GLASS);
  if (glass !== undefined) quoted(',"break_glass_reason":"', glass);
  return joined();
}

/** The last step before the request goes on: allowed, or shadow-denied with the would-be reason. */
export function noteAllowed(st: RequestState): undefined {
  if (!auditing) return undefined;
  const shadowed = st.shadowed;
  ngxVar.fe_audit = shadowed === undefined ? fragment(st, "allow", undefined) : fragment(st, "shadow-deny", shadowed);
  return undefined;
}

/** From the one place a refusal becomes a response. */
export function noteRefused(st: RequestState, r: Refusal): void {
  if (auditing) ngxVar.fe_audit = fragment(st, "deny", r.code);
}

/** A User-Agent's hash, kept per worker: a client sends the same one on every request. */
const UA_MAX = 1024;
let uaMemo = new LuaTable<string, string>();
let uaSize = 0;
function uaHash(ua: string): string {
  const h = uaMemo.get(ua);
  if (h !== undefined) return h;
  if (uaSize >= UA_MAX) {
    uaMemo = new LuaTable<string, string>();
    uaSize = 0;
  }
  const v = sub(toHex(sha256(ua)), 1, 16);
  uaMemo.set(ua, v);
  uaSize = uaSize + 1;
  return v;
}

const POLICY_PART = ',"policy":"' + gw.version + '","status":';

/**
 * The whole event line, from `$fe_audit` and what the end of the request knows. A request
 * nginx refused before the access phase ran has no fragment: it is recorded with what nginx
 * knows, as a deny with reason `nginx-<status>`.
 */
export function eventLine(status: number, seconds: number): string | undefined {
  let frag = ngxVar.fe_audit;
  if (frag === "-") return undefined;
  if (frag === undefined || frag === "") {
    // The error page is a GET; the request line keeps what the client sent.
    const [, , first] = find(ngxVar.request ?? "", "^(%u+) ");
    const m = (first as string | undefined) ?? "OTHER";
    frag = '"tenant":"none","method":"' + method(m) + '","decision":"deny","reason":"nginx-' + format("%d", status) + '"' + NO_GLASS;
  }
  const rid = ngxVar.fe_request_id;
  const tp = ngxVar.fe_traceparent;
  let xc: string | undefined;
  if (gw.caching) xc = ngxVar.fe_x_cache;
  const rl = ngxVar.fe_ratelimit;
  const ip = ngxVar.remote_addr;
  const ua = ngxVar.http_user_agent;
  parts = 0;
  put('{"v":1,"ts":');
  put(format("%d", floor(ngx.req.start_time() * 1000 + 0.5)));
  if (rid !== undefined && rid !== "") quoted(',"request_id":"', rid);
  if (tp !== undefined && tp !== "") quoted(',"traceparent":"', tp);
  put(",");
  put(frag);
  put(POLICY_PART);
  put(format("%d", status));
  if (xc !== undefined && xc !== "") quoted(',"cache":"', xc);
  if (rl !== undefined && rl !== "") quoted(',"ratelimit":"', esc(rl));
  put(',"latency_ms":');
  put(format("%.3f", seconds * 1000));
  // nginx's text form of the peer address: digits, dots, colons, hex.
  if (ip !== undefined) quoted(',"ip":"', ip);
  if (ua !== undefined && ua !== "") quoted(',"ua_hash":"', uaHash(ua));
  put("}");
  return joined();
}

/**
 * The write location's header filter, for the `durable` classes: the event goes to the spool
 * now, in a batch of its own, and the log phase then skips it. Its latency is the time to the
 * upstream's response headers. A stream that cannot be written leaves the event to the log
 * phase's buffer (and fail-closed refuses the next requests).
 */
export function writeDurable(): void {
  const line = eventLine(ngx.status, ngx.now() - ngx.req.start_time());
  if (line !== undefined && writeNow(line)) ngxVar.fe_audit = "-";
}
