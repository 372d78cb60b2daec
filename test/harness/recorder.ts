/**
 * A stand-in FHIR upstream for a test's own gateway: it hands each request to `onRequest`, so
 * the test counts what reached the upstream in whatever shape it needs, and answers with what
 * that returns, or else `body` (200); always application/fhir+json.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorder {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

export interface Reply {
  readonly status: number;
  readonly body: string;
}

export async function startRecorder(onRequest: (req: http.IncomingMessage) => Reply | unknown, body = '{"resourceType":"Bundle","type":"searchset","entry":[]}'): Promise<Recorder> {
  const server = http.createServer((req, res) => {
    const r = onRequest(req);
    const reply = typeof r === "object" && r !== null && "status" in r ? (r as Reply) : { status: 200, body };
    req.resume();
    // With its length, as FHIR servers answer: the gateway's cache stores nothing without one.
    req.on("end", () => res.writeHead(reply.status, { "content-type": "application/fhir+json", "content-length": Buffer.byteLength(reply.body) }).end(reply.body));
  });
  // Longer than nginx's upstream keepalive, so nginx never reuses a connection node has closed.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
