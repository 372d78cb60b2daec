import { diag, type Diagnostic } from "../diagnostics.ts";
import type { Check } from "./types.ts";

/** RFC 9110 field-name token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function isHeaderName(s: string): boolean {
  return TOKEN.test(s) && s.length <= 128;
}

/** A header name nginx can never receive would make resolution or stripping a silent no-op. */
export const headerName: Check = {
  code: "FE2401",
  name: "header-name",
  check(policy) {
    const out: Diagnostic[] = [];
    const at = (path: string, name: string | undefined): void => {
      if (name === undefined || isHeaderName(name)) return;
      out.push(diag("FE2401", path, `${JSON.stringify(name)} is not a valid header name`, "letters, digits and -, at most 128 characters"));
    };
    at("resolution.header", policy.resolution?.header);
    at("requestId.header", policy.requestId?.header);
    (policy.stripHeaders ?? []).forEach((h, i) => at(`stripHeaders[${i}]`, h));
    return out;
  },
};
