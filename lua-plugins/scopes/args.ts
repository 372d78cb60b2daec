/**
 * A search's parameters as the scope checks see them: the query, plus the form body of POST
 * _search. Read from nginx only when a check needs them.
 */
import type { SearchArgs } from "./compartment";
import { toSearchArgs } from "./authorize";

const req = ngx.req;

const MAX_ARGS = 100;
const TOO_MANY: SearchArgs = { _has: ["too many parameters"] };

/**
 * More than MAX_ARGS, or a body nginx kept on disk, cannot be checked whole: they come back
 * as a `_has`, which every compartment check refuses.
 */
export function searchArgs(this: void): SearchArgs {
  const [q, qerr] = req.get_uri_args(MAX_ARGS);
  if (qerr !== undefined) return TOO_MANY;
  const args = toSearchArgs(q);
  if (req.get_method() === "POST") {
    req.read_body();
    const [b, berr] = req.get_post_args(MAX_ARGS);
    if (b === undefined || berr !== undefined) return TOO_MANY;
    for (const [k, vs] of pairs(toSearchArgs(b))) {
      const into = args[k] ?? [];
      for (const v of vs) into.push(v);
      args[k] = into;
    }
  }
  return args;
}

/**
 * What a search's parameters are, as one string, for the per-token verdict memo: the query of
 * a GET, the query and form body of a POST _search. Undefined when the body is on disk.
 */
export function searchKey(method: string, args: string | undefined): string | undefined {
  if (method === "GET" || method === "HEAD") return args ?? "";
  if (method !== "POST") return undefined;
  req.read_body();
  const body = req.get_body_data();
  if (body === undefined) return req.get_body_file() === undefined ? (args ?? "") : undefined;
  return (args ?? "") + "&" + body;
}
