import { Node, VariableDeclarationKind } from "ts-morph";
import type { Diagnostic } from "../../diagnostics.ts";
import { finding, type HookCheck } from "./types.ts";

/**
 * No module-level mutable state. A hook's module lives as long as the nginx worker, so a
 * module-level `let`, or an object or array a hook can change, would carry one request's data
 * into the next (another tenant's, another patient's) and differ from worker to worker. A
 * module-level `const` may hold a primitive, or a literal made read-only with `as const`.
 */
export const hookModuleState: HookCheck = {
  code: "FE2904",
  name: "hook-module-state",
  check(sf) {
    const out: Diagnostic[] = [];
    for (const st of sf.getVariableStatements()) {
      for (const d of st.getDeclarations()) {
        if (st.getDeclarationKind() !== VariableDeclarationKind.Const) {
          out.push(finding("FE2904", d, `module-level ${st.getDeclarationKind()} ${d.getName()}: state that outlives the request`, "keep per-request values in the hook's locals; module-level values must be const"));
          continue;
        }
        const init = d.getInitializer();
        if (init === undefined || frozen(init)) continue;
        out.push(finding("FE2904", d, `module-level const ${d.getName()} holds a value a hook can change`, "make it a primitive, or a literal with `as const`"));
      }
    }
    for (const c of sf.getClasses()) if (c.getStaticProperties().length > 0) out.push(finding("FE2904", c, `class ${c.getName() ?? "(anonymous)"} has static fields: state that outlives the request`, "pass values in, or use module-level consts"));
    return out;
  },
};

function primitive(e: Node): boolean {
  if (Node.isStringLiteral(e) || Node.isNumericLiteral(e) || Node.isNoSubstitutionTemplateLiteral(e) || Node.isTrueLiteral(e) || Node.isFalseLiteral(e)) return true;
  return Node.isPrefixUnaryExpression(e) && Node.isNumericLiteral(e.getOperand());
}

/** Literals all the way down: what `as const` makes deeply read-only. */
function literal(e: Node): boolean {
  if (primitive(e)) return true;
  if (Node.isArrayLiteralExpression(e)) return e.getElements().every(literal);
  if (Node.isObjectLiteralExpression(e)) return e.getProperties().every((p) => Node.isPropertyAssignment(p) && literal(p.getInitializerOrThrow()));
  return false;
}

/** A primitive, a literal `as const`, or a function (its locals are per call). */
function frozen(e: Node): boolean {
  if (primitive(e)) return true;
  if (Node.isAsExpression(e)) return e.getTypeNode()?.getText() === "const" && literal(e.getExpression());
  return Node.isArrowFunction(e) || Node.isFunctionExpression(e);
}
