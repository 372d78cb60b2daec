/**
 * content_by_lua for `error_page ... /__fe_error`: errors nginx makes by itself (a URI over the
 * header buffers, a body over client_max_body_size, an unreachable upstream...) become
 * OperationOutcomes like the gateway's own.
 */
import { codeForStatus, messageForStatus, sendProblem } from "../core/outcome";

const ngxVar = ngx.var;

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="fhir-edge", error="invalid_request"' };

export function from_nginx(this: void): void {
  let status = ngx.status;
  // nginx refuses a second Authorization header itself (400). Say what RFC 6750 says instead:
  // 401 invalid_request. The headers are parsed by then, so the duplicate is visible.
  if (status === 400) {
    const [headers] = ngx.req.get_headers(100);
    if (type(headers["authorization"]) === "table") {
      const id = ngxVar.fe_request_id;
      return sendProblem({ status: 401, code: "login", message: "The Authorization header is not a single valid bearer token." }, id !== undefined && id !== "" ? id : ngxVar.request_id, CHALLENGE);
    }
  }
  // 494-497 are nginx's internal codes (headers too large, TLS client certificates); clients
  // get a plain 400 that still says which.
  const message = messageForStatus(status);
  const code = codeForStatus(status);
  if (status >= 494 && status <= 497) status = 400;
  if (status < 400) status = 500;
  const id = ngxVar.fe_request_id;
  const requestId = id !== undefined && id !== "" ? id : ngxVar.request_id;
  sendProblem({ status, code, message }, requestId);
}
