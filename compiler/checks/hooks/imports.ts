import { Node, SyntaxKind } from "ts-morph";
import type { Diagnostic } from "../../diagnostics.ts";
import { finding, HOOK_API, type HookCheck } from "./types.ts";

/**
 * A hook imports only the hook API: anything else (node:fs, a helper that does I/O, another
 * package) would not exist in nginx, or would reach past what a hook may do. `require`,
 * dynamic `import()` and `export ... from` count as imports.
 */
export const hookImports: HookCheck = {
  code: "FE2901",
  name: "hook-imports",
  check(sf) {
    const out: Diagnostic[] = [];
    const hint = `import only from "${HOOK_API}"; a hook's helpers live in the same file`;
    for (const d of sf.getImportDeclarations()) {
      const m = d.getModuleSpecifierValue();
      if (m !== HOOK_API) out.push(finding("FE2901", d, `imports "${m}": a hook may import only "${HOOK_API}"`, hint));
    }
    for (const d of sf.getExportDeclarations()) {
      const m = d.getModuleSpecifierValue();
      if (m !== undefined && m !== HOOK_API) out.push(finding("FE2901", d, `re-exports "${m}": a hook may import only "${HOOK_API}"`, hint));
    }
    sf.forEachDescendant((n) => {
      if (!Node.isCallExpression(n)) return;
      const callee = n.getExpression();
      if (callee.getKind() === SyntaxKind.ImportKeyword) out.push(finding("FE2901", n, "a dynamic import(): a hook may import only the hook API, statically", hint));
      else if (Node.isIdentifier(callee) && callee.getText() === "require") out.push(finding("FE2901", n, "a require(): a hook may import only the hook API, statically", hint));
    });
    return out;
  },
};
