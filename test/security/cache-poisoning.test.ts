/**
 * The cache-poisoning corpus: hand-written attacks on the response cache (lua-plugins/cache)
 * through a real nginx gateway of the test's own, in front of a recording upstream that the
 * test controls. Each case is a sequence of requests (a "poisoner" and then a "victim", most
 * often), each with what it must get (status, X-Cache, whose body) and what the upstream must
 * have received for it (nothing at all for a refused input). The upstream answers JSON that
 * names its request (`n`, the URL, the headers it saw), so a body says which upstream answer it
 * is, and whether it was built from a poisoner's headers (every poison value holds "evil").
 *
 * Two anonymous tenants proxy to the same upstream path, so their keys differ only by the
 * tenant: `anon` caches Observation, ValueSet and metadata for 60 s; `other` caches the same,
 * and 404s too. The policy's cache stores at most 4 KB an entry.
 *
 * Cases that show a gateway bug keep the right expectation and are marked `bug` (what was
 * observed); they run as it.fails, so they start failing when the gateway is fixed, which is
 * the cue to drop the mark. FE_SHOW_BUGS=1 runs them as plain tests, to see each failure.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kilobytes, seconds, type PolicyInput, type TenantProps } from "../../policy-dsl/index.ts";
import { expectOutcome } from "../harness/fhir.ts";
import { startGateway, type OwnGateway } from "../harness/gateway.ts";
import { rawRequest } from "../harness/raw-http.ts";

// ---- The recording upstream ----

/** What the upstream answers one request with; by default 200 application/fhir+json (or +xml when asked), with a Content-Length. */
interface Reply {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** The body's size in bytes (the JSON padded to it). */
  readonly size?: number;
  /** No Content-Length: node sends the body chunked. */
  readonly chunked?: boolean;
  /** No Content-Type at all. */
  readonly noContentType?: boolean;
}

interface Seen {
  readonly n: number;
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

const seen: Seen[] = [];
let reply: Reply = {};
let count = 0;

function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  const n = ++count;
  seen.push({ n, method: req.method ?? "", url: req.url ?? "", headers: req.headers });
  const r = reply;
  const accept = req.headers["accept"] ?? "";
  let body = JSON.stringify({ resourceType: "Bundle", type: "searchset", n, method: req.method, url: req.url, headers: req.headers });
  if (r.size !== undefined) body = body.slice(0, -1) + `,"pad":"${"x".repeat(Math.max(0, r.size - body.length - 9))}"}`;
  const headers: Record<string, string | readonly string[]> = {};
  if (r.noContentType !== true) headers["content-type"] = accept.includes("xml") ? "application/fhir+xml" : "application/fhir+json";
  if (r.chunked !== true) headers["content-length"] = String(Buffer.byteLength(body));
  Object.assign(headers, r.headers ?? {});
  req.resume();
  req.on("end", () => {
    res.writeHead(r.status ?? 200, headers as http.OutgoingHttpHeaders);
    if (r.chunked === true) {
      res.write(body.slice(0, 10));
      res.end(body.slice(10));
    } else res.end(body);
  });
}

// ---- Cases ----

type XCache = "HIT" | "MISS" | "BYPASS" | "";

interface Step {
  /** Method and target of the request line; `{t}` is the case's own tag, so no two cases share an entry. */
  readonly req: string;
  readonly headers?: readonly string[];
  /** The Host header; null sends none. @default "127.0.0.1" */
  readonly host?: string | null;
  /** @default "1.1" */
  readonly version?: "1.0" | "1.1";
  readonly body?: string;
  /** What the upstream answers this step's request with. */
  readonly reply?: Reply;
  readonly expect: {
    readonly status: number;
    /** The X-Cache header ("" for none); unchecked when undefined. */
    readonly cache?: XCache;
    /**
     * The path and query the upstream received for this step, or null: nothing reached it.
     * Undefined leaves it open (a victim may be answered fresh or from a clean entry).
     */
    readonly upstream?: string | null;
    readonly upstreamMethod?: string;
    /** The Accept the upstream received. */
    readonly upstreamAccept?: string;
    /** Request headers (lower case) the upstream must not have received. */
    readonly upstreamLacks?: readonly string[];
    /** Request headers the upstream must have received with these values. */
    readonly upstreamHas?: Readonly<Record<string, string>>;
    /** Served from the entry that this earlier step's upstream answer filled (a HIT). */
    readonly from?: number;
    /** The body holds nothing of a poisoner's ("evil"). */
    readonly clean?: boolean;
    /** The response's Content-Type starts with this. */
    readonly type?: string;
    /** Response headers (lower case) that must appear exactly once. */
    readonly once?: readonly string[];
  };
}

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
  /** A gateway bug this case shows: what was observed. The case runs as it.fails. */
  readonly bug?: string;
}

const A = "/anon/fhir";
const O = "/other/fhir";
const U = "/anon";

type Opts = Omit<Step, "req" | "expect"> & { readonly expect?: Partial<Step["expect"]> };

const step = (req: string, expect: Step["expect"], o: Opts = {}): Step => ({ ...o, req, expect: { ...expect, ...o.expect } });
/** A GET that goes to the upstream through the cache and is stored or not. */
const miss = (target: string, upstream: string, o: Opts = {}): Step => step(`GET ${target}`, { status: 200, cache: "MISS", upstream }, o);
/** A GET answered from the entry that step `from` filled. */
const hit = (target: string, from: number, o: Opts = {}): Step => step(`GET ${target}`, { status: 200, cache: "HIT", upstream: null, from }, o);
/** A request on a cached type that goes to the upstream around the cache. */
const bypass = (target: string, upstream: string, o: Opts = {}): Step => step(`GET ${target}`, { status: 200, cache: "BYPASS", upstream }, o);
/** A request the gateway refuses: an OperationOutcome, and nothing reaches the upstream. */
const refused = (target: string, status = 400, o: Opts = {}): Step => step(`GET ${target}`, { status, upstream: null }, o);

const utf8 = (s: string): string => Buffer.from(s, "utf8").toString("latin1");
const params = (n: number): string => Array.from({ length: n }, (_, i) => `p${String(i).padStart(3, "0")}=1`).join("&");
const evil = "evil.example";
const OBS = '{"resourceType":"Observation","status":"final","code":{"text":"x"}}';
const post = (target: string, body: string, expect: Step["expect"], o: Opts = {}): Step =>
  step(`POST ${target}`, expect, { headers: ["Content-Type: application/fhir+json"], body, ...o });

const CASES: readonly Case[] = [
  // ---- One reading, one entry: spellings the canonical form merges are HITs ----
  { name: "parameter order: distinct names in another order share the entry", steps: [
    miss(`${A}/Observation?status=final&code={t}`, `${U}/Observation?code={t}&status=final`),
    hit(`${A}/Observation?code={t}&status=final`, 0),
  ] },
  { name: "percent-encoding hex case: %7c and %7C share the entry", steps: [
    miss(`${A}/Observation?code={t}%7cb`, `${U}/Observation?code={t}%7Cb`),
    hit(`${A}/Observation?code={t}%7Cb`, 0),
    hit(`${A}/Observation?code={t}|b`, 0),
  ] },
  { name: "an encoded unreserved character: %41 and A share the entry", steps: [
    miss(`${A}/Observation?code={t}%41`, `${U}/Observation?code={t}A`),
    hit(`${A}/Observation?code={t}A`, 0),
  ] },
  { name: "an encoded name: %63ode is code", steps: [miss(`${A}/Observation?%63ode={t}`, `${U}/Observation?code={t}`), hit(`${A}/Observation?code={t}`, 0)] },
  { name: "+ and %20 are one space", steps: [miss(`${A}/Observation?code={t}+x`, `${U}/Observation?code={t}%20x`), hit(`${A}/Observation?code={t}%20x`, 0)] },
  { name: "encoded sub-delims: %2F and / are one value", steps: [
    miss(`${A}/Observation?subject=Patient%2F{t}`, `${U}/Observation?subject=Patient/{t}`),
    hit(`${A}/Observation?subject=Patient/{t}`, 0),
  ] },
  { name: "empty pieces and a trailing & are dropped", steps: [
    miss(`${A}/Observation?&&code={t}&`, `${U}/Observation?code={t}`),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "raw UTF-8 and lower-case %c3%a9 are one value", steps: [
    miss(`${A}/Observation?code={t}${utf8("é")}`, `${U}/Observation?code={t}%C3%A9`),
    hit(`${A}/Observation?code={t}%c3%a9`, 0),
  ] },
  { name: "a raw = inside a value and %3D are one value", steps: [
    miss(`${A}/Observation?code={t}=x`, `${U}/Observation?code={t}%3Dx`),
    hit(`${A}/Observation?code={t}%3Dx`, 0),
  ] },
  { name: "an encoded _format name is _format", steps: [
    miss(`${A}/Observation?%5Fformat=xml&code={t}`, `${U}/Observation?_format=xml&code={t}`, { expect: { upstreamAccept: "application/fhir+xml" } }),
    hit(`${A}/Observation?_format=xml&code={t}`, 0),
  ] },
  { name: "Accept */*, application/json and none are all JSON", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { expect: { upstreamAccept: "application/fhir+json" } }),
    hit(`${A}/Observation?code={t}`, 0, { headers: ["Accept: */*"] }),
    hit(`${A}/Observation?code={t}`, 0, { headers: ["Accept: application/json"] }),
  ] },
  { name: "an absolute-form request target reads as its path (the Host in it never reaches the upstream)", steps: [
    miss(`http://${evil}${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { expect: { upstreamHas: { host: "UPSTREAM" } } }),
    hit(`${A}/Observation?code={t}`, 0, { expect: { clean: true } }),
  ] },
  { name: "another valid Host shares the entry: the upstream never sees the client's Host", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { host: evil, expect: { upstreamHas: { host: "UPSTREAM" } } }),
    hit(`${A}/Observation?code={t}`, 0, { expect: { clean: true } }),
  ] },
  { name: "a junk Authorization on an anonymous tenant never reaches the upstream, so the entry is shared", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Authorization: Bearer evil-token"], expect: { upstreamLacks: ["authorization"] } }),
    hit(`${A}/Observation?code={t}`, 0, { expect: { clean: true } }),
  ] },
  { name: "a client's Cache-Control: no-cache and Pragma neither refresh nor re-poison the entry", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    hit(`${A}/Observation?code={t}`, 0, { headers: ["Cache-Control: no-cache", "Pragma: no-cache"] }),
  ] },
  { name: "a Range request neither reaches the upstream as a range nor stores a part", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Range: bytes=0-9"], expect: { upstreamLacks: ["range"] } }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  // nginx's not-modified filter makes the client's 304 before the cache's header filter, which
  // then sees no Content-Type and stores nothing: the next plain request fills the entry.
  { name: "a conditional request (If-None-Match) does not store a 304, nor the 200 it was made from", steps: [
    step(`GET ${A}/Observation?code={t}`, { status: 304, cache: "MISS", upstream: `${U}/Observation?code={t}`, upstreamLacks: ["if-none-match"] }, { headers: ["If-None-Match: *"] }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    hit(`${A}/Observation?code={t}`, 1),
  ] },

  // ---- Two readings, two entries: the victim never gets the poisoner's body ----
  { name: "%2B is a plus, not a space: another entry than +", steps: [
    miss(`${A}/Observation?code={t}+x`, `${U}/Observation?code={t}%20x`),
    miss(`${A}/Observation?code={t}%2Bx`, `${U}/Observation?code={t}%2Bx`),
  ] },
  { name: "an encoded & is data: code=a%26status%3Dfinal is not code=a&status=final", steps: [
    miss(`${A}/Observation?code={t}%26status%3Dfinal`, `${U}/Observation?code={t}%26status%3Dfinal`),
    miss(`${A}/Observation?code={t}&status=final`, `${U}/Observation?code={t}&status=final`),
  ] },
  { name: "a raw # is data, not a fragment: another entry than the value before it", steps: [
    miss(`${A}/Observation?code={t}#frag`, `${U}/Observation?code={t}%23frag`),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    hit(`${A}/Observation?code={t}%23frag`, 0),
  ] },
  { name: "a repeated name keeps its order: the reversed order is another entry", steps: [
    miss(`${A}/Observation?code={t}a&code={t}b`, `${U}/Observation?code={t}a&code={t}b`),
    miss(`${A}/Observation?code={t}b&code={t}a`, `${U}/Observation?code={t}b&code={t}a`),
  ] },
  { name: "a _sort list keeps its order: the other order is another entry", steps: [
    miss(`${A}/Observation?_sort=date,code&code={t}`, `${U}/Observation?_sort=date,code&code={t}`),
    miss(`${A}/Observation?_sort=code,date&code={t}`, `${U}/Observation?_sort=code,date&code={t}`),
  ] },
  { name: "a bare name and an empty value are two entries", steps: [
    miss(`${A}/Observation?code={t}&status`, `${U}/Observation?code={t}&status`),
    miss(`${A}/Observation?code={t}&status=`, `${U}/Observation?code={t}&status=`),
  ] },
  { name: "_COUNT is not _count: each its own entry", steps: [
    miss(`${A}/Observation?_COUNT=5&code={t}`, `${U}/Observation?_COUNT=5&code={t}`),
    miss(`${A}/Observation?_count=5&code={t}`, `${U}/Observation?_count=5&code={t}`),
  ] },
  { name: "values differ by case: two entries", steps: [
    miss(`${A}/Observation?code={t}A`, `${U}/Observation?code={t}A`),
    miss(`${A}/Observation?code={t}a`, `${U}/Observation?code={t}a`),
  ] },
  { name: "a fullwidth solidus is not a /", steps: [
    miss(`${A}/Observation?subject=Patient%EF%BC%8F{t}`, `${U}/Observation?subject=Patient%EF%BC%8F{t}`),
    miss(`${A}/Observation?subject=Patient/{t}`, `${U}/Observation?subject=Patient/{t}`),
  ] },
  { name: "precomposed and decomposed é are two entries (bytes, never normalised)", steps: [
    miss(`${A}/Observation?code={t}%C3%A9`, `${U}/Observation?code={t}%C3%A9`),
    miss(`${A}/Observation?code={t}e%CC%81`, `${U}/Observation?code={t}e%CC%81`),
  ] },
  { name: "a read with an empty query (?, ?&) is the read without one: one URI upstream, one entry", steps: [
    miss(`${A}/Observation/{t}`, `${U}/Observation/{t}`),
    hit(`${A}/Observation/{t}?`, 0),
    hit(`${A}/Observation/{t}?&`, 0),
    hit(`${A}/Observation/{t}`, 0),
  ] },
  { name: "JSON by Accept, XML by Accept and XML by _format are three entries", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Accept: application/fhir+json"], expect: { upstreamAccept: "application/fhir+json", type: "application/fhir+json" } }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Accept: application/fhir+xml"], expect: { upstreamAccept: "application/fhir+xml", type: "application/fhir+xml" } }),
    miss(`${A}/Observation?_format=xml&code={t}`, `${U}/Observation?_format=xml&code={t}`, { expect: { upstreamAccept: "application/fhir+xml", type: "application/fhir+xml" } }),
    hit(`${A}/Observation?code={t}`, 1, { headers: ["Accept: application/fhir+xml"], expect: { type: "application/fhir+xml" } }),
    hit(`${A}/Observation?code={t}`, 0, { expect: { type: "application/fhir+json" } }),
  ] },
  { name: "_format=json wins over Accept xml: the upstream is asked for JSON", steps: [
    miss(`${A}/Observation?_format=json&code={t}`, `${U}/Observation?_format=json&code={t}`, { headers: ["Accept: application/fhir+xml"], expect: { upstreamAccept: "application/fhir+json", type: "application/fhir+json" } }),
    hit(`${A}/Observation?_format=json&code={t}`, 0),
  ] },
  { name: "Accept: text/html is BYPASS and stores nothing", steps: [
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Accept: text/html"], expect: { upstreamAccept: "text/html" } }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "an Accept naming both JSON and XML is BYPASS", steps: [
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Accept: application/fhir+json, application/fhir+xml"] }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "_format=html is BYPASS, every time", steps: [
    bypass(`${A}/Observation?_format=html&code={t}`, `${U}/Observation?_format=html&code={t}`),
    bypass(`${A}/Observation?_format=html&code={t}`, `${U}/Observation?_format=html&code={t}`),
  ] },
  { name: "Prefer is BYPASS and stores nothing", steps: [
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Prefer: return=minimal"] }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Prefer: handling=strict"] }),
  ] },
  { name: "HEAD is BYPASS and does not poison GET", steps: [
    step(`HEAD ${A}/Observation?code={t}`, { status: 200, cache: "BYPASS", upstream: `${U}/Observation?code={t}`, upstreamMethod: "HEAD" }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    hit(`${A}/Observation?code={t}`, 1),
  ] },
  { name: "HEAD after GET is BYPASS, not served from the entry", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    step(`HEAD ${A}/Observation?code={t}`, { status: 200, cache: "BYPASS", upstream: `${U}/Observation?code={t}`, upstreamMethod: "HEAD" }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "cross-tenant: one upstream URL, two tenants, two entries (a shared type)", steps: [
    miss(`${A}/ValueSet?url={t}`, `${U}/ValueSet?url={t}`, { expect: { upstreamHas: { "x-tenant-id": "anon" } } }),
    miss(`${O}/ValueSet?url={t}`, `${U}/ValueSet?url={t}`, { expect: { upstreamHas: { "x-tenant-id": "other" } } }),
    hit(`${A}/ValueSet?url={t}`, 0),
    hit(`${O}/ValueSet?url={t}`, 1),
  ] },
  { name: "cross-tenant: the CapabilityStatement is one entry per tenant", steps: [
    miss(`${A}/metadata`, `${U}/metadata`),
    hit(`${A}/metadata`, 0),
    miss(`${O}/metadata`, `${U}/metadata`),
  ] },
  { name: "cross-tenant: a spoofed X-Tenant-ID neither reaches the upstream nor moves the entry", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["X-Tenant-ID: other", "X-Tenant: other"], expect: { upstreamHas: { "x-tenant-id": "anon" } } }),
    miss(`${O}/Observation?code={t}`, `${U}/Observation?code={t}`, { expect: { upstreamHas: { "x-tenant-id": "other" } } }),
  ] },

  { name: "HTTP/1.0 without Host shares the entry with HTTP/1.1", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { version: "1.0", host: null }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "a vread is its own entry, per version", steps: [
    miss(`${A}/Observation/{t}/_history/1`, `${U}/Observation/{t}/_history/1`),
    hit(`${A}/Observation/{t}/_history/1`, 0),
    miss(`${A}/Observation/{t}/_history/2`, `${U}/Observation/{t}/_history/2`),
    miss(`${A}/Observation/{t}`, `${U}/Observation/{t}`),
  ] },
  { name: "an operation ($expand) on a cached type is BYPASS, never stored", steps: [
    bypass(`${A}/ValueSet/$expand?url={t}`, `${U}/ValueSet/$expand?url={t}`),
    bypass(`${A}/ValueSet/$expand?url={t}`, `${U}/ValueSet/$expand?url={t}`),
  ] },
  { name: "a type's history is BYPASS, never stored", steps: [
    bypass(`${A}/Observation/_history?_since={t}`, `${U}/Observation/_history?_since={t}`),
    bypass(`${A}/Observation/_history?_since={t}`, `${U}/Observation/_history?_since={t}`),
  ] },

  // ---- Refused inputs: never upstream, never stored ----
  { name: "; as a separator", steps: [refused(`${A}/Observation?code={t};status=final`), miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`)] },
  { name: "%00 in a value", steps: [refused(`${A}/Observation?code={t}%00x`)] },
  { name: "CR LF injection %0d%0a in a value", steps: [refused(`${A}/Observation?code={t}%0d%0aX-Cache:%20HIT`)] },
  { name: "a raw CR in the request target", steps: [refused(`${A}/Observation?code={t}\rx`)] },
  { name: "double encoding %252F", steps: [refused(`${A}/Observation?subject=Patient%252F{t}`)] },
  { name: "an encoded & encoded again, %2526", steps: [refused(`${A}/Observation?code={t}%2526status%3Dfinal`)] },
  { name: "a % without two hex digits", steps: [refused(`${A}/Observation?code={t}%G1`)] },
  { name: "overlong UTF-8 for / (%C0%AF)", steps: [refused(`${A}/Observation?subject=Patient%C0%AF{t}`)] },
  { name: "a surrogate %ED%A0%80", steps: [refused(`${A}/Observation?code={t}%ED%A0%80`)] },
  { name: "a raw byte 0xFF", steps: [refused(`${A}/Observation?code={t}\xff`)] },
  { name: "an empty name", steps: [refused(`${A}/Observation?=x&code={t}`)] },
  { name: "a name of 129 bytes", steps: [
    refused(`${A}/Observation?${"n".repeat(129)}=1&code={t}`),
    miss(`${A}/Observation?${"n".repeat(128)}=1&code={t}`, `${U}/Observation?code={t}&${"n".repeat(128)}=1`),
  ] },
  { name: "101 parameters", steps: [refused(`${A}/Observation?${params(100)}&code={t}`)] },
  { name: "duplicate _count (one of them encoded)", steps: [refused(`${A}/Observation?_count=1&%5Fcount=1000&code={t}`)] },
  { name: "duplicate _format", steps: [refused(`${A}/Observation?_format=json&_format=xml&code={t}`)] },
  { name: "duplicate _sort", steps: [refused(`${A}/Observation?_sort=date&_sort=-date&code={t}`)] },
  { name: "a _count that is not digits", steps: [refused(`${A}/Observation?_count=1e3&code={t}`)] },
  { name: "a target over 8 KB", steps: [refused(`${A}/Observation?code={t}&x=${"a".repeat(8200)}`, 414)] },
  { name: "a target over nginx's 32 KB header buffers", steps: [refused(`${A}/Observation?code={t}&x=${"a".repeat(40_000)}`, 414)] },
  { name: "GET with a body", steps: [
    step(`GET ${A}/Observation?code={t}`, { status: 400, upstream: null }, { headers: ["Content-Type: application/x-www-form-urlencoded"], body: "code=evil" }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { expect: { clean: true } }),
  ] },
  { name: "a malformed Host (two ports)", steps: [refused(`${A}/Observation?code={t}`, 400, { host: `${evil}:80:80` })] },
  { name: "a Host with a port past 65535", steps: [refused(`${A}/Observation?code={t}`, 400, { host: `${evil}:99999` })] },
  { name: "two Host headers", steps: [refused(`${A}/Observation?code={t}`, 400, { headers: [`Host: ${evil}`] })] },
  { name: "GET with a chunked body", steps: [
    step(`GET ${A}/Observation?code={t}`, { status: 400, upstream: null }, { headers: ["Transfer-Encoding: chunked"], body: "9\r\ncode=evil\r\n0\r\n\r\n" }),
  ] },
  { name: "Content-Length and Transfer-Encoding together (request smuggling)", steps: [
    step(`GET ${A}/Observation?code={t}`, { status: 400, upstream: null }, { headers: ["Content-Length: 4", "Transfer-Encoding: chunked"], body: "0\r\n\r\nGET /anon/fhir/Observation?code=evil HTTP/1.1\r\nHost: x\r\n\r\n" }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "HTTP/1.1 without Host", steps: [refused(`${A}/Observation?code={t}`, 400, { host: null })] },
  { name: "an unsupported method (TRACE)", steps: [step(`TRACE ${A}/Observation?code={t}`, { status: 405, upstream: null })] },
  { name: "a lower-case method", steps: [step(`get ${A}/Observation?code={t}`, { status: 400, upstream: null })] },

  // ---- Path tricks ----
  { name: "/Observation/../ValueSet", steps: [refused(`${A}/Observation/../ValueSet?url={t}`)] },
  { name: "%2e%2e as a segment", steps: [refused(`${A}/Observation/%2e%2e/ValueSet?url={t}`)] },
  { name: "a trailing /. segment", steps: [refused(`${A}/Observation/{t}/.`)] },
  { name: "//Observation", steps: [refused(`${A}//Observation?code={t}`)] },
  { name: "a leading //", steps: [refused(`/${A}/Observation?code={t}`)] },
  { name: "a lower-case type /observation", steps: [refused(`${A}/observation?code={t}`)] },
  { name: "a trailing slash /Observation/", steps: [refused(`${A}/Observation/?code={t}`)] },
  { name: "a ;matrix parameter in the path", steps: [refused(`${A}/Observation;jsessionid={t}?code={t}`)] },
  { name: "an encoded ? in the path", steps: [refused(`${A}/Observation%3Fcode={t}`)] },
  { name: "a backslash in the path", steps: [refused(`${A}/Observation\\{t}`)] },
  { name: "a tenant prefix in another case", steps: [refused(`/ANON/fhir/Observation?code={t}`, 404)] },

  // ---- Unkeyed request headers: whatever the upstream makes of them must not reach a victim ----
  { name: "X-Forwarded-Host", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: [`X-Forwarded-Host: ${evil}`], expect: { cache: undefined } }),
    step(`GET ${A}/Observation?code={t}`, { status: 200, clean: true }),
  ] },
  { name: "X-Forwarded-Proto, -Port and -Prefix, and Forwarded", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["X-Forwarded-Proto: http", "X-Forwarded-Port: 6666", `X-Forwarded-Prefix: /${evil}`, `Forwarded: host=${evil};proto=http`], expect: { cache: undefined } }),
    step(`GET ${A}/Observation?code={t}`, { status: 200, clean: true }),
  ] },
  { name: "X-Original-URL and X-Rewrite-URL", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: [`X-Original-URL: /anon/fhir/Patient?name=${evil}`, `X-Rewrite-URL: /anon/fhir/Patient?name=${evil}`], expect: { cache: undefined } }),
    step(`GET ${A}/Observation?code={t}`, { status: 200, clean: true }),
  ] },
  { name: "X-HTTP-Method-Override and its cousins", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", `X-Method-Override: DELETE-${evil}`], expect: { cache: undefined } }),
    step(`GET ${A}/Observation?code={t}`, { status: 200, clean: true }),
  ] },
  { name: "a Cookie (a credential the upstream may answer by, like Authorization)", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: [`Cookie: session=${evil}`], expect: { cache: undefined } }),
    step(`GET ${A}/Observation?code={t}`, { status: 200, clean: true }),
  ] },

  // ---- What the upstream answers: only a plain 200 FHIR response with a known size is stored ----
  // What is not stored marks its key hit-for-pass: the next request goes around the cache (BYPASS).
  { name: "Cache-Control: no-store is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "cache-control": "no-store" } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "Cache-Control: private is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "cache-control": "private" } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "Cache-Control: no-cache is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "cache-control": "no-cache" } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "Cache-Control: max-age=60, Private (any case, any place) is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "cache-control": "max-age=60, Private" } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "Cache-Control: public, max-age=3600 is stored, for the policy's TTL", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "cache-control": "public, max-age=3600" } } }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "two Cache-Control headers, public then private, are not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "cache-control": ["public", "private"] } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "Set-Cookie is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "set-cookie": "session=victim" } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "Vary: * is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { vary: "*" } } }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a 500 is not stored", steps: [
    step(`GET ${A}/Observation?code={t}`, { status: 500, cache: "MISS", upstream: `${U}/Observation?code={t}` }, { reply: { status: 500 } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a 503 is not stored", steps: [
    step(`GET ${A}/Observation?code={t}`, { status: 503, cache: "MISS", upstream: `${U}/Observation?code={t}` }, { reply: { status: 503 } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a 302 is not stored", steps: [
    step(`GET ${A}/Observation/{t}`, { status: 302, cache: "MISS", upstream: `${U}/Observation/{t}` }, { reply: { status: 302, headers: { location: `http://${evil}/` } } }),
    bypass(`${A}/Observation/{t}`, `${U}/Observation/{t}`, { expect: { clean: true } }),
  ] },
  { name: "a 404 is not stored without notFoundTtl", steps: [
    step(`GET ${A}/Observation/{t}`, { status: 404, cache: "MISS", upstream: `${U}/Observation/{t}` }, { reply: { status: 404 } }),
    bypass(`${A}/Observation/{t}`, `${U}/Observation/{t}`),
  ] },
  { name: "a 404 is stored with notFoundTtl (tenant other), and only for that tenant", steps: [
    step(`GET ${O}/Observation/{t}`, { status: 404, cache: "MISS", upstream: `${U}/Observation/{t}` }, { reply: { status: 404 } }),
    step(`GET ${O}/Observation/{t}`, { status: 404, cache: "HIT", upstream: null, from: 0 }),
    miss(`${A}/Observation/{t}`, `${U}/Observation/{t}`),
  ] },
  { name: "a text/html response is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "content-type": "text/html" } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a response without Content-Type is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { noContentType: true } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "two Content-Types, FHIR then text/html, are not stored (nginx serves the last)", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "content-type": ["application/fhir+json", "text/html"] } } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a chunked response (no Content-Length) is not stored", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { chunked: true } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a response over maxEntry (4 KB) is not stored, and is served whole", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { size: 5000 } }),
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { size: 5000 } }),
  ] },
  { name: "a response of 4097 bytes is not stored; one of 4096 is", steps: [
    miss(`${A}/Observation?code={t}a`, `${U}/Observation?code={t}a`, { reply: { size: 4097 } }),
    bypass(`${A}/Observation?code={t}a`, `${U}/Observation?code={t}a`),
    miss(`${A}/Observation?code={t}b`, `${U}/Observation?code={t}b`, { reply: { size: 4096 } }),
    hit(`${A}/Observation?code={t}b`, 2),
  ] },
  { name: "an upstream's X-Cache never reaches the client: one X-Cache, the gateway's", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "x-cache": "HIT" } }, expect: { once: ["x-cache"] } }),
    hit(`${A}/Observation?code={t}`, 0, { expect: { once: ["x-cache"] } }),
  ] },
  { name: "X-Accel-Expires: 0 from the upstream is ignored (the policy's TTL holds)", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "x-accel-expires": "0" } } }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "X-Accel-Redirect from the upstream is ignored on a cached read", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { reply: { headers: { "x-accel-redirect": "/__fe_vars" } } }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "X-Accel-Redirect from the upstream is ignored on a BYPASS read too", steps: [
    bypass(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`, { headers: ["Prefer: return=representation"], reply: { headers: { "x-accel-redirect": "/__fe_vars" } } }),
  ] },

  // ---- Writes: a successful one makes what it changed unreachable; nothing else does ----
  { name: "a write makes the type's entries stale", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    hit(`${A}/Observation?code={t}`, 0),
    post(`${A}/Observation`, OBS, { status: 201, cache: "BYPASS", upstream: `${U}/Observation`, upstreamMethod: "POST" }, { reply: { status: 201 } }),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
  ] },
  { name: "a write the upstream fails makes nothing stale", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    post(`${A}/Observation`, OBS, { status: 500, cache: "BYPASS", upstream: `${U}/Observation`, upstreamMethod: "POST" }, { reply: { status: 500 } }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "a write the gateway refuses makes nothing stale", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    post(`${A}/Observation`, '{"resourceType":"Patient"}', { status: 400, upstream: null }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "a write on another tenant makes nothing of this one stale", steps: [
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    post(`${O}/Observation`, OBS, { status: 201, cache: "BYPASS", upstream: `${U}/Observation`, upstreamMethod: "POST" }, { reply: { status: 201 } }),
    hit(`${A}/Observation?code={t}`, 0),
  ] },
  { name: "a write of another type makes a chained search stale, not a plain one", steps: [
    miss(`${A}/Observation?subject.name={t}`, `${U}/Observation?subject.name={t}`),
    miss(`${A}/Observation?code={t}`, `${U}/Observation?code={t}`),
    post(`${A}/Patient`, '{"resourceType":"Patient"}', { status: 201, cache: "", upstream: `${U}/Patient`, upstreamMethod: "POST" }, { reply: { status: 201 } }),
    miss(`${A}/Observation?subject.name={t}`, `${U}/Observation?subject.name={t}`),
    hit(`${A}/Observation?code={t}`, 1),
  ] },
];

// ---- The run ----

interface Got {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The response head as sent. */
  readonly head: string;
}

function dechunk(body: string): string {
  let rest = body;
  let out = "";
  for (;;) {
    const nl = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, nl), 16);
    if (!(size > 0)) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

async function send(port: number, s: Step, tag: string): Promise<Got> {
  const line = s.req.replaceAll("{t}", tag);
  const host = s.host === undefined ? "127.0.0.1" : s.host;
  const lines = [`${line} HTTP/${s.version ?? "1.1"}`, ...(host === null ? [] : [`Host: ${host}`]), ...(s.headers ?? []), "Connection: close"];
  // A step that frames its body itself says so in its headers.
  const framed = (s.headers ?? []).some((h) => /^(content-length|transfer-encoding):/i.test(h));
  if (s.body !== undefined && !framed) lines.push(`Content-Length: ${Buffer.byteLength(s.body)}`);
  const res = await rawRequest(port, Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"), s.body ?? "");
  const body = res.headers["transfer-encoding"] === "chunked" ? dechunk(res.body) : res.body;
  return { status: res.status, headers: res.headers, body, head: res.raw.slice(0, Math.max(0, res.raw.indexOf("\r\n\r\n"))) };
}

const nOf = (body: string): number | undefined => {
  try {
    const v = (JSON.parse(body) as { n?: unknown }).n;
    return typeof v === "number" ? v : undefined;
  } catch {
    return undefined;
  }
};

let gw: OwnGateway;
let server: http.Server;
let upstreamHost = "";

beforeAll(async () => {
  server = http.createServer(answer);
  // Longer than nginx's upstream keepalive, so nginx never reuses a connection node has closed.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  upstreamHost = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ttl = { Observation: seconds(60), ValueSet: seconds(60), metadata: seconds(60) };
  // Both tenants proxy to the same upstream path: only the tenant tells their keys apart.
  const tenant = (id: string, extra: Partial<TenantProps> = {}): TenantProps => ({
    id,
    pathPrefix: `/${id}`,
    upstream: { url: `http://${upstreamHost}/anon` },
    anonymous: true,
    cache: { ttl },
    ...extra,
  });
  const policy: PolicyInput = {
    name: "cache-poisoning",
    cache: { maxEntry: kilobytes(4) },
    tenants: [tenant("anon"), tenant("other", { cache: { ttl, notFoundTtl: seconds(60) } })],
  };
  gw = await startGateway(policy, { workers: 1 });
});

afterAll(async () => {
  await gw?.stop();
  await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
});

describe("the cache-poisoning corpus: what each request gets, and what the upstream received for it", () => {
  it("holds at least 60 cases, each named once", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  CASES.forEach((c, ci) => {
    // FE_SHOW_BUGS=1 runs the bug cases as plain tests, to see how each fails.
    const run = c.bug !== undefined && process.env["FE_SHOW_BUGS"] === undefined ? it.fails : it;
    run(`${c.name}${c.bug !== undefined ? " [gateway bug]" : ""}`, async () => {
      const tag = `t${ci}`;
      const fills: (Seen | undefined)[] = [];
      for (const [si, s] of c.steps.entries()) {
        const e = s.expect;
        const at = `step ${si} (${s.req.replaceAll("{t}", tag).slice(0, 120)})`;
        reply = s.reply ?? {};
        const before = seen.length;
        const res = await send(gw.port, s, tag).finally(() => (reply = {}));
        const got = seen.slice(before);
        fills.push(got[0]);
        const said = `${at}: ${res.status} X-Cache ${JSON.stringify(res.headers["x-cache"])} ${res.body.slice(0, 300)}`;
        expect(res.status, said).toBe(e.status);
        if (e.cache !== undefined) expect(res.headers["x-cache"] ?? "", said).toBe(e.cache);
        if (e.upstream === null) {
          expect(got.map((g) => `${g.method} ${g.url}`), `${at}: nothing may reach the upstream`).toEqual([]);
          if (e.from !== undefined) expect(res.headers["x-cache"], said).toBe("HIT");
          else expectOutcome(res.status, e.status, res.headers["content-type"], res.body);
        } else if (e.upstream !== undefined) {
          expect(got.map((g) => `${g.method} ${g.url}`), `${at}: what the upstream received`).toEqual([`${e.upstreamMethod ?? "GET"} ${e.upstream.replaceAll("{t}", tag)}`]);
          const g = got[0] as Seen;
          if (e.upstreamAccept !== undefined) expect(g.headers["accept"], at).toBe(e.upstreamAccept);
          for (const h of e.upstreamLacks ?? []) expect(g.headers[h], `${at}: ${h} reached the upstream`).toBeUndefined();
          for (const [h, v] of Object.entries(e.upstreamHas ?? {})) expect(g.headers[h], at).toBe(v === "UPSTREAM" ? upstreamHost : v);
          // A fresh answer: this request's own, not an earlier one's.
          const n = nOf(res.body);
          if (n !== undefined) expect(n, `${at}: served another request's answer`).toBe(g.n);
        } else {
          // Either a fresh answer or a stored one: checked by `clean` below.
          expect(got.length, at).toBeLessThanOrEqual(1);
        }
        if (e.from !== undefined) {
          const filled = fills[e.from];
          expect(filled, `${at}: step ${e.from} filled no entry`).toBeDefined();
          expect(nOf(res.body), `${at}: not the entry step ${e.from} filled`).toBe(filled?.n);
        }
        if (e.clean === true) expect(res.body, `${at}: the victim got the poisoner's answer`).not.toContain("evil");
        for (const h of e.once ?? []) expect(res.head.split("\r\n").filter((l) => l.toLowerCase().startsWith(`${h}:`)), `${at}: ${h} must be sent once`).toHaveLength(1);
        if (e.type !== undefined) expect(res.headers["content-type"] ?? "", at).toMatch(new RegExp(`^${e.type.replace(/[+.]/g, "\\$&")}`));
      }
    });
  });

  it("left no [error] or [alert] in the gateway's error.log", () => {
    expect(gw.newSeriousLines()).toEqual([]);
  });
});
