/**
 * FE3102: a multiple-return call compared as one value (`find(s, p) !== undefined`).
 *
 * TSTL packs the call's values into a table to compare it (`({find(s, p)}) ~= nil`), which is
 * always true and allocates. It compiles, type-checks, and reads right, so only a check finds
 * it: it once made the UTF-8 pre-check of fhir/body run on every body. Destructure the first
 * value instead: `const [i] = find(s, p); if (i !== undefined) ...`.
 */
import ts from "typescript";

export interface MultiReturnFinding {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

const EQUALITY = new Set([ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsToken]);

function isNothing(e: ts.Expression): boolean {
  return (ts.isIdentifier(e) && e.text === "undefined") || e.kind === ts.SyntaxKind.NullKeyword;
}

/** The brand LuaMultiReturn<T> adds to T; a union of tuples loses the alias name, not the brand. */
const BRAND = "__tstlMultiReturn";

function isMultiReturn(checker: ts.TypeChecker, e: ts.Expression): boolean {
  const t = checker.getTypeAtLocation(e);
  const types = t.isUnion() ? t.types : [t];
  return types.some((x) => x.aliasSymbol?.getName() === "LuaMultiReturn" || checker.getPropertyOfType(x, BRAND) !== undefined);
}

/**
 * The nodes `find` picks in the program's own files (not declarations, not libraries), each at
 * its 1-based line and column: the walk the plugin build's source checks share.
 */
export function ownFindings(program: ts.Program, find: (n: ts.Node) => ts.Node | undefined): MultiReturnFinding[] {
  const out: MultiReturnFinding[] = [];
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile || program.isSourceFileFromExternalLibrary(sf)) continue;
    const visit = (n: ts.Node): void => {
      const at = find(n);
      if (at !== undefined) {
        const { line, character } = sf.getLineAndCharacterOfPosition(at.getStart(sf));
        out.push({ file: sf.fileName, line: line + 1, column: character + 1 });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

/** Every such comparison in the program's own files (not declarations). */
export function multiReturnFindings(program: ts.Program): readonly MultiReturnFinding[] {
  const checker = program.getTypeChecker();
  return ownFindings(program, (n) => {
    if (!ts.isBinaryExpression(n) || !EQUALITY.has(n.operatorToken.kind)) return undefined;
    const other = isNothing(n.right) ? n.left : isNothing(n.left) ? n.right : undefined;
    return other !== undefined && isMultiReturn(checker, other) ? other : undefined;
  });
}
