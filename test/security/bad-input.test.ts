/**
 * The bad-input corpus: every request here must get a 4xx OperationOutcome, and the upstream's
 * request log must show that none of it arrived.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { clearUpstream, stack, upstreamRequests } from "../harness/env.ts";
import { expectOutcome } from "../harness/fhir.ts";
import { head, rawRequest } from "../harness/raw-http.ts";

interface Case {
  readonly name: string;
  readonly request: string | Buffer;
  readonly status: number;
}

const H = "Host: 127.0.0.1";
const longQuery = "a".repeat(9000);

const CASES: readonly Case[] = [
  { name: "raw .. segment", request: head("GET /acme/fhir/../globex/fhir/Patient HTTP/1.0"), status: 400 },
  { name: "raw .. at the end", request: head("GET /acme/fhir/Patient/.. HTTP/1.0"), status: 400 },
  { name: "raw . segment", request: head("GET /acme/fhir/./Patient HTTP/1.0"), status: 400 },
  { name: "encoded %2e%2e segment", request: head("GET /acme/fhir/%2e%2e/Patient HTTP/1.0"), status: 400 },
  { name: "upper-case %2E%2E segment", request: head("GET /acme/fhir/Patient/%2E%2E/%2E%2E/globex/fhir/Patient HTTP/1.0"), status: 400 },
  { name: "mixed .%2e segment", request: head("GET /acme/fhir/.%2e/Patient HTTP/1.0"), status: 400 },
  { name: "encoded slash in a segment", request: head("GET /acme/fhir/Patient%2F123 HTTP/1.0"), status: 400 },
  { name: "encoded backslash", request: head("GET /acme/fhir/Patient%5C123 HTTP/1.0"), status: 400 },
  { name: "double-encoded dot", request: head("GET /acme/fhir/%252e%252e/Patient HTTP/1.0"), status: 400 },
  { name: "empty segment //", request: head("GET /acme/fhir//Patient HTTP/1.0"), status: 400 },
  { name: "leading //", request: head("GET //acme/fhir/Patient HTTP/1.0"), status: 400 },
  { name: "encoded NUL in the path", request: head("GET /acme/fhir/Patient/1%00 HTTP/1.0"), status: 400 },
  { name: "encoded NUL in the query", request: head("GET /acme/fhir/Patient?name=a%00b HTTP/1.0"), status: 400 },
  { name: "raw NUL byte in the request line", request: Buffer.from(`GET /acme/fhir/Patient\u0000/1 HTTP/1.0\r\n${H}\r\nConnection: close\r\n\r\n`, "latin1"), status: 400 },
  { name: "URI over 8 KB", request: head(`GET /acme/fhir/Patient?name=${longQuery} HTTP/1.0`), status: 414 },
  { name: "unknown resource type", request: head("GET /acme/fhir/Foo HTTP/1.0"), status: 404 },
  { name: "lower-case resource type", request: head("GET /acme/fhir/patient HTTP/1.0"), status: 400 },
  { name: "invalid id", request: head(`GET /acme/fhir/Patient/${"x".repeat(65)} HTTP/1.0`), status: 400 },
  { name: "unsupported method TRACE", request: head("TRACE /acme/fhir/Patient HTTP/1.0"), status: 405 },
  { name: "unsupported method OPTIONS", request: head("OPTIONS /acme/fhir/Patient HTTP/1.0"), status: 405 },
  { name: "unsupported method PROPFIND", request: head("PROPFIND /acme/fhir/Patient HTTP/1.0"), status: 405 },
  { name: "method not allowed for the interaction (POST to an id)", request: head("POST /acme/fhir/Patient/1 HTTP/1.0", [H, "Content-Length: 0"]), status: 405 },
  { name: "malformed Host with a slash", request: head("GET /acme/fhir/Patient HTTP/1.0", ["Host: evil/../x"]), status: 400 },
  { name: "malformed Host with an underscore and bang", request: head("GET /acme/fhir/Patient HTTP/1.0", ["Host: bad_host!"]), status: 400 },
  { name: "two Host headers", request: head("GET /acme/fhir/Patient HTTP/1.0", [H, "Host: other.test"]), status: 400 },
  { name: "absolute-form target for another host", request: head("GET http://evil.test/acme/fhir/../x HTTP/1.0"), status: 400 },
];

describe("bad input never reaches the upstream", () => {
  beforeEach(clearUpstream);

  for (const c of CASES) {
    it(`${c.name} -> ${c.status} OperationOutcome`, async () => {
      const res = await rawRequest(stack().gatewayPort, c.request);
      expectOutcome(res.status, c.status, res.headers["content-type"], res.body);
      expect(await upstreamRequests()).toEqual([]);
    });
  }

  it("a client X-Tenant-ID never reaches the upstream, even duplicated or for another tenant", async () => {
    const res = await rawRequest(
      stack().gatewayPort,
      head("GET /acme/fhir/Patient HTTP/1.0", [H, "X-Tenant-ID: globex", "X-Tenant-ID: acme", "x-tenant-id: heady"]),
    );
    expect(res.status).toBe(200);
    const seen = await upstreamRequests();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers["x-tenant-id"]).toBe("acme");
  });
});
