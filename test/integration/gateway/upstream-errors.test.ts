import { describe, expect, it } from "vitest";
import { stack } from "../../harness/env.ts";
import { expectErrorLog } from "../../harness/errorlog-guard.ts";
import { expectOutcome } from "../../harness/fhir.ts";

describe("errors nginx makes by itself are OperationOutcomes", () => {
  it("an unreachable upstream is a 502 OperationOutcome with the request id", async () => {
    expectErrorLog(/connect\(\) failed \(111: Connection refused\) while connecting to upstream/);
    const res = await fetch(`${stack().gateway}/fhir/Patient`, { headers: { "X-Tenant": "offline", "X-Request-ID": "offline-test-0001" } });
    const oo = expectOutcome(res.status, 502, res.headers.get("content-type"), await res.text());
    expect(oo.issue[0]?.code).toBe("transient");
    expect(res.headers.get("x-request-id")).toBe("offline-test-0001");
  });

  it("a body over the policy limit is a 413 OperationOutcome", async () => {
    // The test policy keeps the default limit (16 MB); send just over it.
    expectErrorLog(/client intended to send too large body/);
    const body = "x".repeat(16 * 1024 * 1024 + 1);
    const res = await fetch(`${stack().gateway}/acme/fhir/Patient`, {
      method: "POST",
      headers: { "Content-Type": "application/fhir+json" },
      body,
    });
    expectOutcome(res.status, 413, res.headers.get("content-type"), await res.text());
  });
});
