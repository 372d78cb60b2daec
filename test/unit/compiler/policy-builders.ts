/** In-memory policies for the compiler tests: a valid base that each test bends one way. */
import type { IssuerProps, PolicyInput, TenantProps } from "../../../policy-dsl/index.ts";

export function tenant(id: string, extra: Partial<TenantProps> = {}): TenantProps {
  return { id, pathPrefix: `/${id}`, upstream: { url: `http://127.0.0.1:8103/${id}/R4` }, anonymous: true, ...extra };
}

export function policy(tenants: readonly TenantProps[], extra: Partial<PolicyInput> = {}): PolicyInput {
  return { name: "test", tenants, ...extra };
}

/** A JWT issuer on loopback (plain http is allowed there); tests add what they need. */
export function issuer(id: string, extra: Partial<IssuerProps> = {}): IssuerProps {
  return { id, issuer: `http://127.0.0.1:8104/${id}`, audiences: ["https://fhir.example.org"], mode: "jwt", ...extra };
}
