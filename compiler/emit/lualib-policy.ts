/**
 * Which TSTL lualib helpers the runtime plugins may use, and the check that enforces it on the
 * compiled Lua (FE3101).
 *
 * Every helper is denied unless ALLOWED_HELPERS lists it with a reason. A deny list would let
 * every helper a TSTL upgrade adds through, and would make the first use of an unlisted one
 * a silent choice. The plugins use no helper today, so the strict form costs nothing. The
 * RULES below only explain why a helper is kept off the request path and what to write instead.
 *
 * The reasons come from each helper's Lua source (node_modules/typescript-to-lua/dist/lualib/),
 * and from `luajit -jv` on this machine's luajit2 (2.1-20230119, the one nginx links). "FNEW" is
 * closure creation, which that LuaJIT does not compile: `-jv` shows `NYI: bytecode 51`.
 */
import ts from "typescript";
import * as tstl from "typescript-to-lua";
import { getLuaLibExportToFeatureMap } from "typescript-to-lua/dist/LuaLib.js";

type Feature = tstl.LuaLibFeature;
const F = tstl.LuaLibFeature;

export interface HelperRule {
  readonly helpers: readonly Feature[];
  /** Why it costs on the request path; follows "compiles to <helpers>: ". */
  readonly reason: string;
  /** What to write instead. */
  readonly hint: string;
}

/**
 * Helpers the plugins may use, each with the measurement that shows it is harmless in the
 * worker (a trace without side-exit chains, no allocation per request). Empty: nothing has
 * needed one yet.
 */
export const ALLOWED_HELPERS: ReadonlyMap<Feature, string> = new Map<Feature, string>([]);

export const RULES: readonly HelperRule[] = [
  {
    helpers: [F.SparseArrayNew, F.SparseArrayPush, F.SparseArraySpread],
    reason:
      "a {...} table per call to keep the arguments' evaluation order; in the nginx worker its table-shape guards " +
      "failed on every request and chained ~400 side traces (30-54 µs per request)",
    hint: "hoist the conditional or optional-call argument (or the spread that is not last) into a local before the call",
  },
  {
    helpers: [F.Spread, F.LuaIteratorSpread],
    reason: "copies the spread value into a new table, then unpacks it: allocates per call",
    hint: "pass the array itself, or index it in a loop",
  },
  {
    helpers: [F.CountVarargs, F.Unpack],
    reason: "varargs plumbing (select('#', ...), unpack) that TSTL emits for the JIT target only inside other helpers",
    hint: "rewrite the code that brought in the helper using it",
  },
  {
    helpers: [F.ArrayMap, F.ArrayFilter, F.ArrayForEach, F.ArraySome, F.ArrayEvery, F.ArrayReduce, F.ArrayReduceRight, F.ArrayFind, F.ArrayFindIndex, F.ArrayFlatMap],
    reason:
      "one loop, shared by every call site, calls the callback per element; an inline arrow is a closure made per " +
      "call (FNEW, not compiled), and map/filter/flatMap allocate their result",
    hint: "write an indexed loop: for (let i = 0; i < xs.length; i++)",
  },
  {
    helpers: [F.ArraySort, F.ArrayToSorted],
    reason: "a new comparator closure per call (FNEW, not compiled) around table.sort",
    hint: "sort once at build or init time",
  },
  {
    helpers: [
      F.ArrayFrom, F.ArraySlice, F.ArrayConcat, F.ArrayFlat, F.ArraySplice, F.ArrayToReversed, F.ArrayToSpliced, F.ArrayWith,
      F.ArrayEntries, F.ArrayJoin, F.ArrayToObject, F.ObjectKeys, F.ObjectValues, F.ObjectEntries, F.ObjectFromEntries,
      F.ObjectRest, F.ObjectAssign, F.ObjectGroupBy, F.MapGroupBy, F.StringSplit,
    ],
    reason: "a new table per call (entries: one more per pair; splice and assign also pack their arguments in {...})",
    hint: "iterate in place (an indexed loop, or pairs over a LuaTable), and compute what repeats once per token or per tenant",
  },
  {
    helpers: [
      F.Class, F.ClassExtends, F.New, F.InstanceOf, F.InstanceOfObject, F.Decorate, F.DecorateLegacy, F.DecorateParam,
      F.ObjectDefineProperty, F.ObjectGetOwnPropertyDescriptor, F.ObjectGetOwnPropertyDescriptors, F.SetDescriptor,
      F.CloneDescriptor, F.DescriptorGet, F.DescriptorSet, F.Symbol, F.SymbolRegistry,
    ],
    reason:
      "JS object semantics: new is setmetatable plus a varargs ____constructor(...) call, instanceof walks the " +
      "____super chain, descriptors turn field access into __index/__newindex functions, a Symbol is a table",
    hint: "plain tables and module functions: a new() that returns a typed table, as OpenResty's libraries do",
  },
  {
    helpers: [F.Delete],
    reason: "looks up the metatable's property descriptors first, and allocates {} for a table without a metatable",
    hint: "assign undefined (t[k] = undefined compiles to t[k] = nil)",
  },
  {
    helpers: [F.Map, F.Set, F.WeakMap, F.WeakSet],
    reason:
      "JS collections as lualib classes: each get/set/has is a method call, and a Map keeps insertion order in " +
      "linked key tables (4 tables per new Map)",
    hint: "a plain Lua table keyed by string (LuaTable, LuaMap or Record<string, T>)",
  },
  {
    helpers: [F.Iterator],
    reason: "for...of over a non-array: decides per loop between string, generator, Symbol.iterator and ipairs",
    hint: "index the array (for (let i = 0; i < xs.length; i++)), or iterate a LuaTable with pairs",
  },
  {
    helpers: [F.Promise, F.PromiseAll, F.PromiseAllSettled, F.PromiseAny, F.PromiseRace, F.Await, F.Generator, F.DelegatedYield, F.Using, F.UsingAsync],
    reason: "promises, async and generators: closures (FNEW, not compiled) and coroutines created per call",
    hint: "call the ngx API directly (cosockets already yield inside the request's coroutine) and return LuaMultiReturn results",
  },
  {
    helpers: [F.Error, F.SourceMapTraceBack],
    reason: "an Error is a lualib class instance with a debug.traceback string per construction, and throwing is not the request path's error channel",
    hint: "return a typed failure (LuaMultiReturn<[undefined, ErrCode]>); the request path never throws",
  },
  {
    helpers: [
      F.TypeOf, F.StringAccess, F.StringCharAt, F.StringCharCodeAt, F.StringEndsWith, F.StringIncludes, F.StringPadEnd,
      F.StringPadStart, F.StringReplace, F.StringReplaceAll, F.StringSlice, F.StringStartsWith, F.StringSubstr,
      F.StringSubstring, F.StringTrim, F.StringTrimEnd, F.StringTrimStart, F.Match, F.ParseInt, F.ParseFloat, F.Number,
      F.NumberIsFinite, F.NumberIsInteger, F.NumberIsNaN, F.NumberToString,
      F.NumberToFixed, F.MathAtan2, F.MathModf, F.MathSign, F.MathTrunc, F.ArrayAt, F.ArrayFill, F.ArrayIncludes,
      F.ArrayIndexOf, F.ArrayIsArray, F.ArrayPush, F.ArrayPushArray, F.ArrayReverse, F.ArrayUnshift, F.ArraySetLength,
      F.FunctionBind,
    ],
    reason:
      "JS semantics (0-based indexes, negative arguments, NaN, JS type names) wrapped around a Lua builtin and called " +
      "per use; not measured here, and the plugins use the Lua form",
    hint: "use the Lua builtin: string.find(s, x, 1, true), string.sub, #t + 1, type(v), tonumber(s)",
  },
];

/** For a helper no rule names (one a newer TSTL adds). */
const UNLISTED: HelperRule = {
  helpers: [],
  reason: "a lualib helper that no rule here has looked at yet",
  hint: "read its Lua source in typescript-to-lua/dist/lualib and write the plain Lua form (STYLE.md)",
};

const byFeature = new Map<Feature, HelperRule>();
for (const rule of RULES) for (const f of rule.helpers) byFeature.set(f, rule);

/** The rule that explains why `feature` is denied, or undefined when it is allowed. */
export function deniedBy(feature: Feature): HelperRule | undefined {
  if (ALLOWED_HELPERS.has(feature)) return undefined;
  return byFeature.get(feature) ?? UNLISTED;
}

/** The hint that closes every FE3101, after the rule's own. */
export const ALLOW_HINT = "or, with a measured trace, allow it in compiler/emit/lualib-policy.ts";

/** One place in a plugin's TypeScript that compiled to denied helpers. */
export interface LualibFinding {
  /** The TypeScript file (absolute, as the program names it). */
  readonly file: string;
  /** 1-based; undefined when the Lua carries no position back to the TypeScript. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** Lua names as the module uses them (`__TS__SparseArrayNew`), in order of appearance. */
  readonly helpers: readonly string[];
  readonly rule: HelperRule;
}

interface Pos {
  readonly line: number;
  readonly column: number;
}

/** Where TSTL itself would place a node: its first token, 0-based (LuaAST's getSourcePosition). */
function tsPosition(node: ts.Node): Pos | undefined {
  const original = ts.getParseTreeNode(node) ?? node;
  const sf = original.getSourceFile() as ts.SourceFile | undefined;
  if (sf === undefined || original.pos < 0) return undefined;
  const { line, character } = sf.getLineAndCharacterOfPosition(original.getStart(sf));
  return { line, column: character };
}

function isLuaNode(v: unknown): v is tstl.Node {
  return typeof v === "object" && v !== null && typeof (v as { kind?: unknown }).kind === "number";
}

/** Child nodes of any Lua AST node, whatever its kind: every field that holds nodes. */
function children(node: tstl.Node): tstl.Node[] {
  const out: tstl.Node[] = [];
  for (const v of Object.values(node)) {
    if (Array.isArray(v)) {
      for (const x of v) if (isLuaNode(x)) out.push(x);
    } else if (isLuaNode(v)) out.push(v);
  }
  return out;
}

function ownPosition(node: tstl.Node): Pos | undefined {
  return node.line === undefined || node.column === undefined ? undefined : { line: node.line, column: node.column };
}

/**
 * The check as a TSTL plugin. Its visitors give the helper calls TSTL leaves without a position
 * the innermost TS node whose transformation made them; `afterPrint` then walks each printed
 * module's Lua AST, which is exactly what gets written, and records the denied helpers it uses.
 */
export function lualibCheck(): { readonly plugin: tstl.Plugin; findings(): readonly LualibFinding[] } {
  const exportToFeature = getLuaLibExportToFeatureMap(tstl.LuaTarget.LuaJIT, ts.sys);
  const isHelper = (n: tstl.Node): n is tstl.Identifier => tstl.isIdentifier(n) && exportToFeature.has(n.text);
  /** Position of the TS node that produced a position-less helper call or name. */
  const origin = new WeakMap<tstl.Node, Pos>();
  const found: LualibFinding[] = [];

  // Only through position-less nodes: anything under a positioned node is located by it.
  const claim = (nodes: readonly tstl.Node[], tsNode: ts.Node): void => {
    let pos: Pos | undefined;
    const visit = (n: tstl.Node): void => {
      if (ownPosition(n) !== undefined) return;
      if (isHelper(n) || (tstl.isCallExpression(n) && isHelper(n.expression))) {
        pos ??= tsPosition(tsNode);
        if (pos !== undefined && !origin.has(n)) origin.set(n, pos);
      }
      for (const c of children(n)) visit(c);
    };
    for (const n of nodes) visit(n);
  };
  // The statements TSTL hoists before the current one (the SparseArray* ones among them).
  const pending = (context: tstl.TransformationContext): readonly tstl.Statement[] =>
    context.precedingStatementsStack[context.precedingStatementsStack.length - 1] ?? [];
  const since = (context: tstl.TransformationContext, before: ReadonlySet<tstl.Statement>): tstl.Statement[] =>
    pending(context).filter((s) => !before.has(s));

  const locateExpression = (node: ts.Expression, context: tstl.TransformationContext): tstl.Expression => {
    const before = new Set(pending(context));
    const result = context.superTransformExpression(node);
    claim([result, ...since(context, before)], node);
    return result;
  };
  const locateStatement = (node: ts.Statement, context: tstl.TransformationContext): tstl.Statement[] => {
    const result = context.superTransformStatements(node);
    claim(result, node);
    return result;
  };
  // The kinds whose transformation makes helper calls without a position (TSTL passes no
  // tsOriginal): argument and element lists (SparseArray*) and destructuring declarations
  // (ArraySlice, ObjectRest). Elsewhere TSTL positions the call or a close ancestor itself.
  const visitors: tstl.Visitors = {
    [ts.SyntaxKind.CallExpression]: locateExpression,
    [ts.SyntaxKind.NewExpression]: locateExpression,
    [ts.SyntaxKind.ArrayLiteralExpression]: locateExpression,
    [ts.SyntaxKind.VariableStatement]: locateStatement,
  };

  const namesOf = (feature: Feature): string[] => [...exportToFeature].filter(([, f]) => f === feature).map(([name]) => name);
  const unlocated = (file: string, names: readonly string[], rule: HelperRule): LualibFinding => ({
    file,
    line: undefined,
    column: undefined,
    helpers: names,
    rule,
  });

  const scanFile = (file: tstl.ProcessedFile): void => {
    if (file.luaAst === undefined) {
      // No tree to locate from (not seen with TSTL 1.37): the text still decides.
      for (const name of new Set(file.code.match(/\b__TS__\w+/g) ?? [])) {
        const feature = exportToFeature.get(name);
        const rule = feature === undefined ? UNLISTED : deniedBy(feature);
        if (rule !== undefined) found.push(unlocated(file.fileName, [name], rule));
      }
      return;
    }
    const denied = new Map<Feature, HelperRule>();
    for (const f of file.luaAst.luaLibFeatures) {
      const rule = deniedBy(f);
      if (rule !== undefined) denied.set(f, rule);
    }
    if (denied.size === 0) return;
    const sites = new Map<string, { pos: Pos | undefined; rule: HelperRule; helpers: string[] }>();
    const located = new Set<Feature>();
    const record = (name: string, pos: Pos | undefined): void => {
      const feature = exportToFeature.get(name);
      const rule = feature === undefined ? undefined : denied.get(feature);
      if (feature === undefined || rule === undefined) return;
      located.add(feature);
      const key = `${pos?.line ?? ""}:${pos?.column ?? ""}:${RULES.indexOf(rule)}`;
      const site = sites.get(key) ?? { pos, rule, helpers: [] };
      if (!site.helpers.includes(name)) site.helpers.push(name);
      sites.set(key, site);
    };
    const walk = (n: tstl.Node, around: Pos | undefined): void => {
      const here = ownPosition(n) ?? origin.get(n) ?? around;
      if (tstl.isCallExpression(n) && isHelper(n.expression)) {
        record(n.expression.text, here);
        for (const p of n.params) walk(p, here);
        return;
      }
      if (isHelper(n)) record(n.text, here);
      for (const c of children(n)) walk(c, here);
    };
    // Not from the File node: its position is the module's first token, which locates nothing.
    for (const s of file.luaAst.statements) walk(s, undefined);
    for (const site of sites.values()) {
      const { pos, helpers, rule } = site;
      found.push(pos === undefined ? unlocated(file.fileName, helpers, rule) : { file: file.fileName, line: pos.line + 1, column: pos.column + 1, helpers, rule });
    }
    // TSTL also imports a helper for a use that names nothing (Promise for an async function,
    // Set for a spread Set) next to the calls that do. Alone, it is still reported, by file.
    if (sites.size > 0) return;
    for (const [f, rule] of denied) if (!located.has(f)) found.push(unlocated(file.fileName, namesOf(f), rule));
  };

  return {
    plugin: {
      visitors,
      afterPrint: (_program, _options, _host, files) => {
        for (const f of files) scanFile(f);
      },
    },
    findings: () => [...found].sort((a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)),
  };
}
