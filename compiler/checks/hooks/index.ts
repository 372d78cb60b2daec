import type { SourceFile } from "ts-morph";
import type { Diagnostic } from "../../diagnostics.ts";
import { hookAsync } from "./async.ts";
import { hookComparisons } from "./comparisons.ts";
import { hookImports } from "./imports.ts";
import { hookIo } from "./io.ts";
import { hookModuleState } from "./state.ts";
import type { HookCheck } from "./types.ts";

export type { HookCheck } from "./types.ts";
export { HOOK_API } from "./types.ts";

/** Every rule on hook sources, in code order. A new rule takes a new code; old codes are never reused. */
export const HOOK_CHECKS: readonly HookCheck[] = [hookImports, hookAsync, hookIo, hookModuleState, hookComparisons];

/** Every finding of every rule on one hook source, at once. */
export function checkHookSource(sf: SourceFile): Diagnostic[] {
  return HOOK_CHECKS.flatMap((c) => c.check(sf));
}
