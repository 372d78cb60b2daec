/**
 * Static rules on policy hook sources (the TypeScript operators write for the access and log
 * phases, compiled by TSTL into the bundle). One rule per file; each finding is a Diagnostic
 * at `file:line:column`, with a stable FE29xx code and a hint.
 */
import type { Node, SourceFile } from "ts-morph";
import { diag, type Diagnostic } from "../../diagnostics.ts";

/** The one module a hook may import (types only are emitted away; the rest is the runtime's). */
export const HOOK_API = "fhir-edge/hooks";

export interface HookCheck {
  readonly code: `FE29${number}`;
  readonly name: string;
  check(sf: SourceFile): Diagnostic[];
}

/** `/policy/ward.hooks.ts:12:5` of a node. */
function at(n: Node): string {
  const sf = n.getSourceFile();
  const { line, column } = sf.getLineAndColumnAtPos(n.getStart());
  return `${sf.getFilePath()}:${line}:${column}`;
}

export function finding(code: string, n: Node, message: string, hint: string): Diagnostic {
  return diag(code, at(n), message, hint);
}
