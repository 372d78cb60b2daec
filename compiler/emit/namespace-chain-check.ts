/**
 * FE3103: an optional chain on a member of a namespace import (`policy.audit?.key_file`).
 *
 * TSTL (1.x here) compiles it to `local o = policy.audit; local x = o and ____exports.audit.key_file`:
 * the second half indexes the importing module's own exports, so it fails at run time whenever
 * the member is there (it once stopped every gateway without an audit trail from starting).
 * It type-checks and reads right, so only a check finds it. Take the member into a local first:
 * `const cfg = policy.audit; const x = cfg === undefined ? undefined : cfg.key_file`.
 */
import ts from "typescript";
import { ownFindings, type MultiReturnFinding } from "./multireturn-check.ts";

export type NamespaceChainFinding = MultiReturnFinding;

function isNamespaceImport(checker: ts.TypeChecker, e: ts.Expression): boolean {
  if (!ts.isIdentifier(e)) return false;
  const sym = checker.getSymbolAtLocation(e);
  return sym?.declarations?.some((d) => ts.isNamespaceImport(d)) === true;
}

/** Every `ns.member?.x` (and `ns.member?.[k]`, `ns.member?.()`) in the program's own files. */
export function namespaceChainFindings(program: ts.Program): readonly NamespaceChainFinding[] {
  const checker = program.getTypeChecker();
  return ownFindings(program, (n) => {
    if (!(ts.isPropertyAccessExpression(n) || ts.isElementAccessExpression(n) || ts.isCallExpression(n)) || n.questionDotToken === undefined) return undefined;
    const base = n.expression;
    return ts.isPropertyAccessExpression(base) && isNamespaceImport(checker, base.expression) ? base : undefined;
  });
}
