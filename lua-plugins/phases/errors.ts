/**
 * content_by_lua for `error_page ... /__fe_error`: errors nginx makes by itself (a URI over the
 * header buffers, a body over client_max_body_size, an unreachable upstream...) become
 * OperationOutcomes like the gateway's own.
 */
import { codeForStatus, messageForStatus, sendProblem } from "../core/outcome";

const ngxVar = ngx.var;

export function from_nginx(this: void): void {
  let status = ngx.status;
  // 494 is nginx's internal code for oversized request headers; clients get a plain 400.
  if (status === 494) status = 400;
  if (status < 400) status = 500;
  const id = ngxVar.fe_request_id;
  const requestId = id !== undefined && id !== "" ? id : ngxVar.request_id;
  sendProblem({ status, code: codeForStatus(status), message: messageForStatus(status) }, requestId);
}
