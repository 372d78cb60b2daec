/**
 * The smallest HTTP/1.1 client the audit sinks need: one POST over a cosocket, from a timer
 * (ngx.location.capture is not available there). Written by hand: lua-resty-http is not in
 * Debian, and a sink only needs a POST with a known length, a status, and a body read by
 * Content-Length, chunked encoding or the connection's close (none after a 204 or 304).
 * Connections are kept alive in nginx's cosocket pool.
 */
import type { AuditHttpSinkIR } from "../generated/policy";
import { contains } from "../core/str";

const find = string.find;
const lower = string.lower;
const format = string.format;
const sub = string.sub;
const tonumber_ = tonumber as (this: void, v: string, base?: number) => number | undefined;

export type HttpError = "connect" | "tls" | "send" | "receive" | "bad_response";
type Result = LuaMultiReturn<[number, string] | [undefined, HttpError]>;

const MAX_BODY = 1024 * 1024;

function fail(e: HttpError): Result {
  return $multi(undefined, e);
}

function readChunked(sock: TcpSocket): string | undefined {
  const parts: string[] = [];
  let total = 0;
  for (;;) {
    const [line] = sock.receive("*l");
    if (line === undefined) return undefined;
    const [, , hex] = find(line, "^(%x+)");
    const n = hex === undefined ? undefined : tonumber_(hex as string, 16);
    if (n === undefined) return undefined;
    if (n === 0) {
      // Trailers, up to the empty line.
      for (;;) {
        const [t] = sock.receive("*l");
        if (t === undefined) return undefined;
        if (t === "") return table.concat(parts);
      }
    }
    total = total + n;
    if (total > MAX_BODY) return undefined;
    const [data] = sock.receive(n);
    const [crlf] = sock.receive("*l");
    if (data === undefined || crlf === undefined) return undefined;
    parts.push(data);
  }
}

/** POST `body` to the sink; the status and body of the response, or what failed. */
export function post(sink: AuditHttpSinkIR, path: string, contentType: string, body: string, headers: string): Result {
  const sock = ngx.socket.tcp();
  sock.settimeouts(sink.timeout_ms, sink.timeout_ms, sink.timeout_ms);
  const [ok] = sock.connect(sink.host, sink.port);
  if (ok === undefined) return fail("connect");
  if (sink.scheme === "https") {
    const [, , name] = find(sink.host_header, "^([^:]+)");
    const [hs] = sock.sslhandshake(undefined, (name as string | undefined) ?? sink.host, true);
    if (hs === undefined) {
      sock.close();
      return fail("tls");
    }
  }
  let head = "POST " + path + " HTTP/1.1\r\nHost: " + sink.host_header + "\r\nContent-Type: " + contentType + "\r\nContent-Length: " + format("%d", body.length) + "\r\n" + headers;
  for (const [k, v] of pairs(sink.headers)) head = head + (k as string) + ": " + (v as string) + "\r\n";
  const [sent] = sock.send(head + "\r\n" + body);
  if (sent === undefined) {
    sock.close();
    return fail("send");
  }
  let code: string | undefined;
  let length: number | undefined;
  let chunked = false;
  let close = false;
  // Interim 1xx responses (a 100 Continue the sink sends unasked) come before the final one.
  while (code === undefined || sub(code, 1, 1) === "1") {
    const [status] = sock.receive("*l");
    code = undefined;
    if (status !== undefined) {
      const [, , c] = find(status, "^HTTP/1%.%d (%d%d%d)");
      code = c as string | undefined;
    }
    if (code === undefined) {
      sock.close();
      return fail(status === undefined ? "receive" : "bad_response");
    }
    length = undefined;
    chunked = false;
    close = false;
    for (;;) {
      const [line] = sock.receive("*l");
      if (line === undefined) {
        sock.close();
        return fail("receive");
      }
      if (line === "") break;
      const [, , name, value] = find(line, "^([^:]+):%s*(.-)%s*$");
      if (name !== undefined) {
        const n = lower(name as string);
        if (n === "content-length") length = tonumber_(value as string);
        else if (n === "transfer-encoding" && contains(lower(value as string), "chunked")) chunked = true;
        else if (n === "connection" && lower(value as string) === "close") close = true;
      }
    }
  }
  let resp: string | undefined = "";
  // 204 and 304 have no body whatever their headers say (RFC 9112 6.3).
  if (code === "204" || code === "304") resp = "";
  else if (chunked) resp = readChunked(sock);
  else if (length !== undefined && length > 0) {
    if (length > MAX_BODY) resp = undefined;
    else [resp] = sock.receive(length);
  } else if (length === undefined) {
    close = true;
    [resp] = sock.receive("*a");
  }
  if (resp === undefined) {
    sock.close();
    return fail("receive");
  }
  if (close) sock.close();
  else sock.setkeepalive(30000, 4);
  return $multi(tonumber_(code as string)!, sub(resp, 1));
}
