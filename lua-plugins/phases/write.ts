/**
 * header_filter_by_lua of the write location (`/__fe_write`), before the client sees the
 * response: a caching tenant's write bumps the cache generations it invalidates (phases/cache),
 * and a `durable` audit class has its event written to the spool (audit/event).
 */
import * as gw from "../core/gateway";
import { written } from "./cache";
import { writeDurable } from "../audit/event";
import { durableGlass, durableWrites } from "../audit/step";

const ngxVar = ngx.var;

/**
 * A caching tenant's writes come here whether or not they are durable, so each request is
 * asked: a write when writes are durable, a break-glass request when break-glass is.
 */
export function headers(this: void): void {
  if (gw.caching) written();
  if (durableWrites || (durableGlass && ngxVar.fe_break_glass !== "")) writeDurable();
}
