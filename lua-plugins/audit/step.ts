/**
 * The audit trail's pipeline steps. `spoolRoom`: with `atLimit: fail-closed`, a spool past its
 * size (or a stream that cannot be written) refuses new FHIR requests with a 503 until the
 * sinks catch up, rather than answer requests it cannot record. `durableWrite`: requests of the
 * `durable` classes (writes, break-glass) go through the write location, whose header filter
 * writes their event to the spool before the response is released (phases/write).
 */
import { refusal, type RequestState, type Verdict } from "../core/request";
import * as policy from "../generated/policy";
import { spoolFull, writable } from "./writer";

const cfg = policy.audit;
const failClosed = cfg !== undefined && cfg.at_limit === "fail-closed";
function isDurable(cls: "write" | "break-glass"): boolean {
  if (cfg === undefined) return false;
  for (const c of cfg.durable) if (c === cls) return true;
  return false;
}
export const durableWrites = isDurable("write");
export const durableGlass = isDurable("break-glass");
/** Some class is durable: the write location's header filter writes the events of its requests. */
const durable = durableWrites || durableGlass;

const SPOOL_FULL = refusal(503, "transient", "The audit trail cannot record the request now; retry later.", { "Retry-After": "5" });

export function spoolRoom(st: RequestState): Verdict {
  if (!failClosed || (!spoolFull() && writable())) return undefined;
  const c = st.c;
  if (c === undefined || c.public) return undefined;
  return SPOOL_FULL;
}

const WRITES: Record<string, boolean> = { create: true, update: true, patch: true, delete: true, batch: true, transaction: true };
export const WRITE_LOCATION = "/__fe_write";

export function durableWrite(st: RequestState): Verdict {
  const c = st.c;
  if (!durable || c === undefined || st.via !== undefined) return undefined;
  if (durableGlass && st.glassBroken) st.via = WRITE_LOCATION;
  else if (durableWrites && (WRITES[c.interaction] === true || (st.method === "POST" && c.interaction !== "search-type"))) st.via = WRITE_LOCATION;
  return undefined;
}
