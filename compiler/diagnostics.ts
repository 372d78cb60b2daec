/**
 * Compiler diagnostics. Codes are stable and never renumbered:
 * FE0xxx loading, FE1xxx schema, FE2xxx semantic checks, FE3xxx emit/build.
 */
export interface Diagnostic {
  readonly code: string;
  /** Where in the policy: `tenants[1].upstream.url`; `""` for the policy itself. */
  readonly path: string;
  readonly message: string;
  readonly hint?: string;
  /** The file the value came from when it is not the policy file (`tenants/acme.yaml`). */
  readonly source?: string;
}

export function diag(code: string, path: string, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { code, path, message } : { code, path, message, hint };
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.path === "" ? "" : ` ${d.path}`;
  const from = d.source === undefined ? "" : ` [${d.source}]`;
  const hint = d.hint === undefined ? "" : ` (hint: ${d.hint})`;
  return `${d.code}${where}${from}: ${d.message}${hint}`;
}

/** `["tenants", 1, "upstream"]` -> `tenants[1].upstream`. */
export function joinPath(parts: readonly (string | number)[]): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) out += out === "" ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}
