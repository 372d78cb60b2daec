import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** The scopes SMART defines (resource scopes, v1 and v2, and the launch and OpenID ones). */
const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)(\?[^ ]+)?$/;
const SMART_OTHER = new Set(["launch", "launch/patient", "launch/encounter", "openid", "fhirUser", "profile", "offline_access", "online_access"]);

/**
 * Break-glass must be reachable and must not hand out data by itself: an anonymous tenant has
 * no token to hold the scope, an eligibility scope that SMART defines would make every token
 * with it eligible (and grant what it grants), and the added scopes must be resource scopes.
 */
export const breakGlassCheck: Check = {
  code: "FE2801",
  name: "break-glass",
  check(policy) {
    const out: Diagnostic[] = [];
    let any = false;
    policy.tenants.forEach((t, i) => {
      const bg = t.breakGlass;
      if (bg === undefined) return;
      any = true;
      const at = `tenants[${i}].breakGlass`;
      if (t.anonymous === true) out.push(diag("FE2801", at, "is set on an anonymous tenant, whose requests carry no token to hold the break-glass scope", "give the tenant issuers, or remove breakGlass"));
      const scope = bg.scope;
      if (scope !== undefined && (RESOURCE_SCOPE.test(scope.replace(/%2[Ff]/g, "/")) || SMART_OTHER.has(scope))) {
        out.push(diag("FE2801", `${at}.scope`, `"${scope}" is a SMART scope: every token granted it could break glass`, 'use a scope of its own, such as "break-glass", that the authorization server grants only to those who may'));
      }
      (bg.scopes ?? []).forEach((s, k) => {
        if (!RESOURCE_SCOPE.test(s)) out.push(diag("FE2801", `${at}.scopes[${k}]`, `"${s}" is not a SMART resource scope`, 'write it as context/Type.permissions, such as "user/*.rs"'));
      });
    });
    const durable = policy.audit?.durable ?? [];
    const k = durable.indexOf("break-glass");
    if (k >= 0 && !any) out.push(diag("FE2801", `audit.durable[${k}]`, "names break-glass, and no tenant has breakGlass", "give a tenant breakGlass, or remove the class"));
    return out;
  },
};
