/**
 * header_filter_by_lua: the request id goes back to the client on every response, including
 * upstream errors, and a few headers that are always right for a FHIR API.
 */
const ngxVar = ngx.var;
const header = ngx.header;

export function run(this: void): void {
  // Calls to issuers (ngx.location.capture) pass through here too; their headers are not ours.
  if (ngx.is_subrequest) return;
  const id = ngxVar.fe_request_id;
  if (id !== undefined && id !== "") header["X-Request-ID"] = id;
  header["X-Content-Type-Options"] = "nosniff";
}
