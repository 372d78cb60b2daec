import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** Why a URL is unusable as an nginx upstream, or undefined when it is fine. */
export function upstreamUrlProblem(raw: string): { message: string; hint: string } | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { message: `${JSON.stringify(raw)} is not a URL`, hint: "http://host:port/base/path" };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return { message: `scheme ${JSON.stringify(u.protocol.slice(0, -1))} is not supported`, hint: "use http or https" };
  }
  if (u.hostname === "") return { message: "has no host", hint: "http://host:port/base/path" };
  if (u.username !== "" || u.password !== "") {
    return { message: "must not carry credentials", hint: "credentials in URLs end up in logs; configure upstream auth separately" };
  }
  if (u.search !== "" || u.hash !== "" || raw.includes("?") || raw.includes("#")) {
    return { message: "must not have a query or fragment", hint: "only scheme, host, port and base path" };
  }
  // URL() accepts ports up to 65535 and drops a default port, so only an explicit :0 is left.
  if (/^[a-z]+:\/\/[^/]*:0+(\/|$)/i.test(raw)) return { message: "port 0 is not a valid port", hint: "1-65535" };
  if (/[%;{}\s]/.test(u.pathname)) return { message: "base path has characters nginx cannot take as is", hint: "plain path segments only" };
  return undefined;
}

export const upstreamUrl: Check = {
  code: "FE2201",
  name: "upstream-url",
  check(policy) {
    const out: Diagnostic[] = [];
    policy.tenants.forEach((t, i) => {
      const p = upstreamUrlProblem(t.upstream.url);
      if (p !== undefined) out.push(diag("FE2201", `tenants[${i}].upstream.url`, p.message, p.hint));
    });
    return out;
  },
};
