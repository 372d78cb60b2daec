/**
 * header_filter_by_lua of the write location (`/__fe_write`), before the client sees the
 * response: a caching tenant's write bumps the cache generations it invalidates (phases/cache),
 * and a `durable` audit class has its event written to the spool (audit/event).
 */
import * as gw from "../core/gateway";
import { written } from "./cache";
import { writeDurable } from "../audit/event";
import { durableWrites } from "../audit/step";

export function headers(this: void): void {
  if (gw.caching) written();
  if (durableWrites) writeDurable();
}
