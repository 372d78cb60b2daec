import { Node } from "ts-morph";
import type { Diagnostic } from "../../diagnostics.ts";
import { finding, type HookCheck } from "./types.ts";

/**
 * No network, filesystem, process, timers or code from strings. Imports are held to the hook
 * API (FE2901), so these are the globals that would still reach out: the JS ones, and the Lua
 * and nginx ones a `declare` could type. `declare` itself is refused, since it is how a hook
 * would name anything the API does not give it.
 */
const FORBIDDEN = new Map<string, string>([
  ["fetch", "network"],
  ["XMLHttpRequest", "network"],
  ["WebSocket", "network"],
  ["eval", "code from a string"],
  ["Function", "code from a string"],
  ["setTimeout", "a timer"],
  ["setInterval", "a timer"],
  ["setImmediate", "a timer"],
  ["queueMicrotask", "a timer"],
  ["process", "the process"],
  ["globalThis", "the global scope"],
  ["require", "a module loader"],
  // The Lua and nginx globals, should a hook declare them.
  ["io", "the filesystem"],
  ["os", "the operating system"],
  ["ngx", "nginx's API"],
  ["debug", "the debug library"],
  ["load", "code from a string"],
  ["loadstring", "code from a string"],
  ["dofile", "the filesystem"],
  ["loadfile", "the filesystem"],
  ["_G", "the global scope"],
  ["rawset", "raw table access"],
  ["setmetatable", "metatables"],
]);

export const hookIo: HookCheck = {
  code: "FE2903",
  name: "hook-io",
  check(sf) {
    const out: Diagnostic[] = [];
    const hint = "a hook decides from the request view alone; anything it needs goes in the policy or the hook API";
    sf.forEachDescendant((n) => {
      if (Node.isIdentifier(n)) {
        const what = FORBIDDEN.get(n.getText());
        if (what === undefined) return;
        const parent = n.getParent();
        // `x.fetch` or `{ fetch: 1 }` name a property, not the global.
        if ((Node.isPropertyAccessExpression(parent) && parent.getNameNode() === n) || (Node.isPropertyAssignment(parent) && parent.getNameNode() === n)) return;
        if (Node.isPropertySignature(parent) || Node.isMethodSignature(parent)) return;
        // The name a `declare` introduces: the declare itself is the finding.
        if (Node.isVariableDeclaration(parent) && parent.getNameNode() === n && isAmbient(parent)) return;
        // A local of the same name shadows the global: only the global is refused.
        const decls = n.getSymbol()?.getDeclarations() ?? [];
        if (decls.some((d) => d.getSourceFile() === sf && !isAmbient(d))) return;
        out.push(finding("FE2903", n, `uses ${n.getText()} (${what})`, hint));
      } else if (Node.isAmbientable(n) && n.hasDeclareKeyword()) {
        out.push(finding("FE2903", n, "a declare: it names something the hook API does not give a hook", hint));
      }
    });
    return out;
  },
};

function isAmbient(d: Node): boolean {
  for (let n: Node | undefined = d; n !== undefined; n = n.getParent()) if (Node.isAmbientable(n) && n.hasDeclareKeyword()) return true;
  return false;
}
