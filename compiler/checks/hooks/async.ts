import { Node, SyntaxKind } from "ts-morph";
import type { Diagnostic } from "../../diagnostics.ts";
import { finding, type HookCheck } from "./types.ts";

/**
 * No `async`, `await`, generators or Promises: a hook runs inside an nginx phase handler, to
 * the end, in one go. TSTL would compile them to coroutines, and a yield there is not a yield
 * to nginx's event loop.
 */
/** `x.Promise`: a property of that name, not the global. */
function isMemberName(n: Node): boolean {
  const p = n.getParent();
  return Node.isPropertyAccessExpression(p) && p.getNameNode() === n;
}

export const hookAsync: HookCheck = {
  code: "FE2902",
  name: "hook-async",
  check(sf) {
    const out: Diagnostic[] = [];
    const hint = "a hook returns its verdict directly: no async, await, generators or Promises";
    sf.forEachDescendant((n) => {
      if (n.getKind() === SyntaxKind.AsyncKeyword) out.push(finding("FE2902", n.getParentOrThrow(), "an async function", hint));
      else if (Node.isAwaitExpression(n)) out.push(finding("FE2902", n, "an await", hint));
      else if ((Node.isFunctionDeclaration(n) || Node.isFunctionExpression(n) || Node.isMethodDeclaration(n)) && n.isGenerator()) out.push(finding("FE2902", n, "a generator function", hint));
      else if (Node.isIdentifier(n) && n.getText() === "Promise" && !isMemberName(n)) out.push(finding("FE2902", n, "a Promise", hint));
    });
    return out;
  },
};
