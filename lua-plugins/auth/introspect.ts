/**
 * RFC 7662 token introspection, the pure half: the request body, and the checks on the
 * response (with the SMART profile's `patient` and `fhirUser`, and the policy's tenant claim).
 * The HTTP call lives in auth/idp; this runs under plain LuaJIT.
 */
import * as cjson from "cjson.safe";
import { nonEmpty } from "../core/str";
import { audienceOk } from "./jwt";

const gsub = string.gsub;
const format = string.format;
const byte = string.byte;

function formEscape(s: string): string {
  const [out] = gsub(s, "[^%w%-%._~]", (c: string) => format("%%%02X", byte(c)));
  return out;
}

export function requestBody(token: string): string {
  return "token=" + formEscape(token) + "&token_type_hint=access_token";
}

/** `Basic base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 asks. */
export function basicCredentials(clientId: string, secret: string): string {
  return formEscape(clientId) + ":" + formEscape(secret);
}

export type IntrospectionError = "bad_response" | "inactive" | "expired" | "not_yet_valid" | "bad_issuer" | "bad_audience" | "bad_scope";

export interface IntrospectionExpect {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly skew: number;
  readonly now: number;
  /** Field naming the tenant (the policy's resolution.claim). */
  readonly tenantClaim: string;
  readonly patientClaim: string;
}

export interface Introspected {
  readonly sub: string | undefined;
  readonly client_id: string | undefined;
  readonly scope: string;
  readonly exp: number | undefined;
  readonly tenant: string | undefined;
  readonly patient: string | undefined;
  readonly fhir_user: string | undefined;
}

/**
 * Checks an introspection response. `iss`, when present, must be the issuer; `aud` must name
 * an accepted audience; `exp` and `nbf` are checked with skew; `scope` must be a string when
 * present. A JSON error or a non-object is bad_response (the caller treats it as an outage of
 * the endpoint, not as a bad token).
 */
export function checkResponse(body: string, e: IntrospectionExpect): LuaMultiReturn<[Introspected, undefined] | [undefined, IntrospectionError]> {
  const [doc] = cjson.decode(body);
  if (type(doc) !== "table") return $multi(undefined, "bad_response");
  const r = doc as Record<string, unknown>;
  const active = r["active"];
  if (typeof active !== "boolean") return $multi(undefined, "bad_response");
  if (!active) return $multi(undefined, "inactive");
  const iss = r["iss"];
  if (iss !== undefined && iss !== e.issuer) return $multi(undefined, "bad_issuer");
  if (!audienceOk(r["aud"], e.audiences)) return $multi(undefined, "bad_audience");
  const exp = r["exp"];
  if (exp !== undefined && (typeof exp !== "number" || e.now >= exp + e.skew)) return $multi(undefined, "expired");
  const nbf = r["nbf"];
  if (nbf !== undefined && (typeof nbf !== "number" || e.now + e.skew < nbf)) return $multi(undefined, "not_yet_valid");
  const scope = r["scope"];
  if (scope !== undefined && typeof scope !== "string") return $multi(undefined, "bad_scope");
  return $multi(
    {
      sub: nonEmpty(r["sub"]),
      client_id: nonEmpty(r["client_id"]),
      scope: scope ?? "",
      exp: typeof exp === "number" ? exp : undefined,
      tenant: nonEmpty(r[e.tenantClaim]),
      patient: nonEmpty(r[e.patientClaim]),
      fhir_user: nonEmpty(r["fhirUser"]),
    },
    undefined,
  );
}
