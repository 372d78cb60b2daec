/**
 * Raw HTTP over a socket, for requests that fetch() or node:http would refuse or normalise:
 * dot segments, NUL bytes, malformed Host, duplicate headers. Requests are HTTP/1.0 with
 * `Connection: close`, so nginx answers without chunking and closes: the response is simply
 * everything read until EOF.
 */
import net from "node:net";

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly raw: string;
}

export function rawRequest(port: number, head: string | Buffer, body = "", timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new Error(`raw request timed out after ${timeoutMs} ms`));
    });
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", reject);
    sock.on("close", () => {
      const raw = Buffer.concat(chunks).toString("latin1");
      const split = raw.indexOf("\r\n\r\n");
      const headText = split < 0 ? raw : raw.slice(0, split);
      const [statusLine = "", ...lines] = headText.split("\r\n");
      const status = Number(statusLine.split(" ")[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers, body: split < 0 ? "" : raw.slice(split + 4), raw });
    });
    // One write: when nginx refuses from the headers alone (501, 400) and closes, a body still
    // on its way would make the kernel answer it with a reset, and the response would be lost.
    sock.write(body === "" ? head : Buffer.concat([Buffer.from(head), Buffer.from(body)]));
  });
}

/** A request head from a request line and header lines; adds Connection: close. */
export function head(requestLine: string, headers: readonly string[] = ["Host: 127.0.0.1"]): string {
  return [requestLine, ...headers, "Connection: close", "", ""].join("\r\n");
}

/**
 * A raw request's status, Content-Type and body, with an HTTP/1.1 chunked answer put back
 * together (the raw client reads to EOF and keeps the chunk framing).
 */
export async function rawDechunked(port: number, request: string | Buffer, body?: string): Promise<{ status: number; ctype: string | undefined; body: string }> {
  const res = await rawRequest(port, request, body);
  if (res.headers["transfer-encoding"] !== "chunked") return { status: res.status, ctype: res.headers["content-type"], body: res.body };
  let rest = res.body;
  let out = "";
  for (;;) {
    const nl = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, nl), 16);
    if (!(size > 0)) break;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
  return { status: res.status, ctype: res.headers["content-type"], body: out };
}
