/** Small assertions about FHIR responses shared by the integration tests. */
import { expect } from "vitest";

export interface OperationOutcome {
  resourceType: "OperationOutcome";
  issue: { severity: string; code: string; diagnostics?: string }[];
}

/** A gateway-made error: FHIR JSON content type, an OperationOutcome body, the given status. */
export function expectOutcome(status: number, expected: number, contentType: string | null | undefined, body: string): OperationOutcome {
  expect(status).toBe(expected);
  expect(contentType ?? "").toMatch(/^application\/fhir\+json/);
  const oo = JSON.parse(body) as OperationOutcome;
  expect(oo.resourceType).toBe("OperationOutcome");
  expect(oo.issue.length).toBeGreaterThan(0);
  expect(oo.issue[0]?.severity).toBe("error");
  return oo;
}
