/**
 * Calls to an issuer: discovery, JWKS and introspection, through the internal locations the
 * conf generates per issuer origin (compiler/emit/gateway-conf idpLocations). nginx's proxy does the
 * HTTP, TLS and mTLS; timeouts are the issuer's. Only in phases that may yield (access).
 *
 * Discovered endpoints must be on the issuer's own origin: a discovery document cannot send
 * the gateway's client secret, or its choice of signing keys, to another host.
 */
import * as cjson from "cjson.safe";
import type { EndpointIR, IssuerIR } from "../generated/policy";
import { basicCredentials } from "./introspect";

const capture = ngx.location.capture;
const match = string.match;
const sub = string.sub;

export interface Reply {
  /** HTTP status; 0 when the call never produced a complete answer. */
  readonly status: number;
  readonly body: string;
  /** Seconds the call took. */
  readonly seconds: number;
}

const GET_VARS = { fe_idp_auth: "", fe_idp_ctype: "" };

function call(ep: EndpointIR, body: string | undefined, auth: string): Reply {
  ngx.update_time();
  const t0 = ngx.now();
  const res =
    body === undefined
      ? capture(ep.loc + ep.path, { method: ngx.HTTP_GET, vars: GET_VARS })
      : capture(ep.loc + ep.path, { method: ngx.HTTP_POST, body, vars: { fe_idp_auth: auth, fe_idp_ctype: "application/x-www-form-urlencoded" } });
  ngx.update_time();
  return { status: res.truncated ? 0 : res.status, body: res.body, seconds: ngx.now() - t0 };
}

export function get(ep: EndpointIR): Reply {
  return call(ep, undefined, "");
}

/** Authorization header values per issuer id, from the environment (read once, in the master). */
const basic = new LuaTable<string, string>();

/**
 * Reads every introspection client secret from the environment. Called in init_by_lua, so a
 * missing variable fails `nginx -t` and the reload, instead of every request later.
 */
export function loadSecrets(issuers: readonly IssuerIR[]): void {
  for (const iss of issuers) {
    const intro = iss.introspection;
    if (intro === undefined) continue;
    const secret = os.getenv(intro.secret_env);
    if (secret === undefined || secret === "") {
      error("fhir-edge: environment variable " + intro.secret_env + " (introspection client secret of issuer " + iss.id + ") is not set", 0);
    }
    basic.set(iss.id, "Basic " + ngx.encode_base64(basicCredentials(intro.client_id, secret)));
  }
}

export function post(ep: EndpointIR, issuerId: string, body: string): Reply {
  return call(ep, body, basic.get(issuerId) ?? "");
}

/** The issuer's origin, `scheme://host[:port]`. */
function originOf(url: string): string | undefined {
  const [o] = match(url, "^(https?://[^/?#]+)");
  return o;
}

/** The path of `url` when it lies on `origin`, for a request through the origin's location. */
function pathOn(url: unknown, origin: string): string | undefined {
  if (typeof url !== "string") return undefined;
  if (sub(url, 1, origin.length + 1) !== origin + "/") return undefined;
  const path = sub(url, origin.length + 1);
  const [safe] = match(path, "^/[%w%-%._~/]*$");
  return safe;
}

export interface Discovered {
  readonly jwks: string | undefined;
  readonly introspection: string | undefined;
}

/** Discovery results per issuer, in the fe_auth dict for the JWKS max age. */
export function discover(iss: IssuerIR, dict: SharedDict): Discovered | undefined {
  const key = "d\t" + iss.id;
  const [cached] = dict.get(key);
  if (typeof cached === "string") {
    const [nl] = string.find(cached, "\n", 1, true);
    if (nl !== undefined) {
      const j = sub(cached, 1, nl - 1);
      const i = sub(cached, nl + 1);
      return { jwks: j === "" ? undefined : j, introspection: i === "" ? undefined : i };
    }
  }
  const origin = originOf(iss.issuer);
  if (origin === undefined) return undefined;
  const reply = get({ loc: iss.origin_loc, path: iss.discovery_path });
  if (reply.status !== 200) {
    ngx.log(ngx.WARN, "fhir-edge: discovery for issuer ", iss.id, " answered ", reply.status);
    return undefined;
  }
  const [doc] = cjson.decode(reply.body);
  if (type(doc) !== "table" || (doc as Record<string, unknown>)["issuer"] !== iss.issuer) {
    ngx.log(ngx.WARN, "fhir-edge: discovery document of issuer ", iss.id, " is malformed or names another issuer");
    return undefined;
  }
  const d = doc as Record<string, unknown>;
  const found: Discovered = { jwks: pathOn(d["jwks_uri"], origin), introspection: pathOn(d["introspection_endpoint"], origin) };
  dict.set(key, (found.jwks ?? "") + "\n" + (found.introspection ?? ""), iss.jwks_max_age_s);
  return found;
}

export function jwksEndpoint(iss: IssuerIR, dict: SharedDict): EndpointIR | undefined {
  if (iss.jwks !== undefined) return iss.jwks;
  const d = discover(iss, dict);
  return d?.jwks === undefined ? undefined : { loc: iss.origin_loc, path: d.jwks };
}

export function introspectionEndpoint(iss: IssuerIR, dict: SharedDict): EndpointIR | undefined {
  const intro = iss.introspection;
  if (intro === undefined) return undefined;
  if (intro.endpoint !== undefined) return intro.endpoint;
  const d = discover(iss, dict);
  return d?.introspection === undefined ? undefined : { loc: iss.origin_loc, path: d.introspection };
}
