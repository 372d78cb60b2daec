import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

const FORM = "redis://[:password@]host[:port][/db]";

/** Why a Redis URL is not one the runtime can connect to as the IR reads it, or undefined. */
export function redisUrlProblem(raw: string): { message: string; hint: string } | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { message: `${JSON.stringify(raw)} is not a URL`, hint: FORM };
  }
  if (u.protocol !== "redis:") return { message: `scheme ${JSON.stringify(u.protocol.slice(0, -1))} is not redis`, hint: FORM };
  if (u.hostname === "") return { message: "has no host", hint: FORM };
  // The IR keeps only the password: a user name would be dropped without a word.
  if (u.username !== "") return { message: "names a user, and only a password is supported", hint: "redis://:password@host, or passwordEnv" };
  if (u.search !== "" || u.hash !== "" || raw.includes("?") || raw.includes("#")) return { message: "must not have a query or fragment", hint: FORM };
  if (u.port !== "" && Number(u.port) === 0) return { message: "port 0 is not a valid port", hint: "1-65535" };
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^[0-9]{1,5}$/.test(db)) return { message: `database ${JSON.stringify(db)} is not a number`, hint: `${FORM}, with db a number (0 when omitted)` };
  return undefined;
}

/**
 * The store and its Redis go together: `store: "redis"` with nothing to connect to cannot
 * count, and a `redis` the local store never reads is a cluster quota the operator believes in
 * and does not have.
 */
export const ratelimitStore: Check = {
  code: "FE2603",
  name: "ratelimit-store",
  check(policy) {
    const out: Diagnostic[] = [];
    const l = policy.limits;
    if (l === undefined) return out;
    const store = l.store ?? "local";
    if (store === "redis" && l.redis === undefined) {
      out.push(diag("FE2603", "limits.redis", 'is required with store "redis"', `add redis: { url: "redis://host:6379/0", nodes: n }, or use store "local"`));
    } else if (store !== "redis" && l.redis !== undefined) {
      out.push(diag("FE2603", "limits.redis", `is given, but limits.store is ${JSON.stringify(store)}${l.store === undefined ? " (the default)" : ""}, which never reads it`, 'set store "redis" or remove redis'));
    }
    if (l.redis !== undefined && typeof l.redis.url === "string") {
      const p = redisUrlProblem(l.redis.url);
      if (p !== undefined) out.push(diag("FE2603", "limits.redis.url", p.message, p.hint));
    }
    return out;
  },
};
