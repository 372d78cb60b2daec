/**
 * The one place where gateway-made errors become responses: a FHIR OperationOutcome with
 * application/fhir+json and the right status. Messages are fixed sentences chosen by the caller;
 * nothing from the request is echoed back.
 */
import * as cjson from "cjson.safe";
import type { Refusal } from "./request";

/** FHIR issue-type codes the gateway uses. */
export type IssueCode =
  | "invalid" | "structure" | "not-found" | "not-supported" | "forbidden" | "login"
  | "too-long" | "too-costly" | "throttled" | "transient" | "timeout" | "exception" | "security";

export interface Problem {
  readonly status: number;
  readonly code: IssueCode;
  readonly message: string;
}

export function outcomeJson(code: IssueCode, message: string, requestId: string | undefined): string {
  const issue: Record<string, unknown> = { severity: "error", code, diagnostics: message };
  if (requestId !== undefined) {
    issue["details"] = { text: "request id " + requestId };
  }
  const [body] = cjson.encode({ resourceType: "OperationOutcome", issue: [issue] });
  return body ?? '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}';
}

export interface IssueDetail {
  readonly code: IssueCode;
  readonly message: string;
  /** FHIRPath of what the issue is about, e.g. `Bundle.entry[2]`. */
  readonly expression?: string;
}

/** Several issues in one OperationOutcome (a Bundle with several denied entries). */
export function sendIssues(status: number, issues: readonly IssueDetail[], requestId: string | undefined): never {
  const list: Record<string, unknown>[] = [];
  for (const i of issues) {
    const issue: Record<string, unknown> = { severity: "error", code: i.code, diagnostics: i.message };
    if (i.expression !== undefined) issue["expression"] = [i.expression];
    if (requestId !== undefined) issue["details"] = { text: "request id " + requestId };
    list.push(issue);
  }
  const [body] = cjson.encode({ resourceType: "OperationOutcome", issue: list });
  ngx.status = status;
  ngx.header["Content-Type"] = "application/fhir+json";
  ngx.header["Cache-Control"] = "no-store";
  ngx.say(body ?? '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}');
  return ngx.exit(status);
}

/**
 * Send the OperationOutcome and finish the request. Only for phases that may send a body
 * (access, content); `extraHeaders` are set first (WWW-Authenticate, Retry-After, Allow...).
 */
export function sendProblem(p: Problem, requestId: string | undefined, extraHeaders?: Record<string, string>): never {
  ngx.status = p.status;
  ngx.header["Content-Type"] = "application/fhir+json";
  ngx.header["Cache-Control"] = "no-store";
  if (extraHeaders !== undefined) {
    for (const [k, v] of pairs(extraHeaders)) ngx.header[k] = v;
  }
  ngx.say(outcomeJson(p.code, p.message, requestId));
  return ngx.exit(p.status);
}

/** The issue code that fits an HTTP status nginx produced by itself. */
export function codeForStatus(status: number): IssueCode {
  if (status === 404) return "not-found";
  if (status === 405) return "not-supported";
  if (status === 413) return "too-costly";
  if (status === 414 || status === 494) return "too-long";
  if (status === 501 || status === 505) return "not-supported";
  if (status >= 495 && status <= 497) return "security";
  if (status === 429) return "throttled";
  if (status === 502 || status === 503) return "transient";
  if (status === 504 || status === 408) return "timeout";
  if (status === 403) return "forbidden";
  if (status === 401) return "login";
  if (status >= 500) return "exception";
  return "invalid";
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request is malformed.",
  401: "Authentication is required.",
  403: "The request is not allowed.",
  404: "No such resource or endpoint.",
  405: "The method is not allowed here.",
  408: "The request took too long to arrive.",
  411: "The request body needs a Content-Length or chunked transfer encoding.",
  413: "The request body is too large.",
  414: "The request URI is too long.",
  429: "Too many requests.",
  494: "The request headers are too large.",
  495: "The client certificate could not be verified.",
  496: "A client certificate is required.",
  497: "This port speaks HTTPS.",
  500: "The gateway failed to process the request.",
  502: "The upstream FHIR server could not be reached or answered badly.",
  503: "The service is temporarily unavailable.",
  504: "The upstream FHIR server did not answer in time.",
  501: "The request uses a transfer encoding this gateway does not implement.",
  505: "The HTTP version is not supported; use HTTP/1.1.",
};

export function messageForStatus(status: number): string {
  return STATUS_TEXT[status] ?? "The request failed.";
}

/** A pipeline step's refusal, as its OperationOutcome. */
export function sendRefusal(r: Refusal, requestId: string | undefined): never {
  if (r.issues !== undefined) {
    if (r.headers !== undefined) {
      for (const [k, v] of pairs(r.headers)) ngx.header[k] = v;
    }
    return sendIssues(r.status, r.issues, requestId);
  }
  return sendProblem(r, requestId, r.headers);
}
