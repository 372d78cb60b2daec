/**
 * Request ids and W3C trace context. Pure (no ngx calls).
 *
 * A client's X-Request-ID is kept only when it is 8-128 characters of [A-Za-z0-9._:-], so it can
 * go into logs and headers without escaping. Anything else is replaced by the nginx-generated id.
 */
import { matches } from "../core/str";
const sub = string.sub;
const rep = string.rep;

export function isValidRequestId(s: string): boolean {
  const n = s.length;
  return n >= 8 && n <= 128 && !matches(s, "[^%w%._:%-]");
}

const TRACEPARENT = "^00%-" + rep("%x", 32) + "%-" + rep("%x", 16) + "%-%x%x$";
const ZERO_TRACE = rep("0", 32);
const ZERO_SPAN = rep("0", 16);

/**
 * The traceparent to send upstream: the client's trace id and flags when its header is valid
 * (version 00, lower-case hex, non-zero ids), with the gateway's own span id as parent; a new
 * trace otherwise. `nginxId` is nginx's `$request_id`: 32 random hex characters.
 */
export function nextTraceparent(incoming: string | undefined, nginxId: string): string {
  const span = sub(nginxId, 1, 16);
  if (incoming !== undefined && incoming.length === 55 && matches(incoming, TRACEPARENT)) {
    const trace = sub(incoming, 4, 35);
    const parent = sub(incoming, 37, 52);
    if (trace !== ZERO_TRACE && parent !== ZERO_SPAN && !matches(incoming, "%u")) {
      return "00-" + trace + "-" + span + "-" + sub(incoming, 54, 55);
    }
  }
  return "00-" + nginxId + "-" + span + "-01";
}
