/**
 * Issue #14, the reference generated from the types: docs/policy-reference.md is what
 * compiler/emit/policy-reference.ts makes of policy-dsl/types.ts, so a changed option or TSDoc
 * without `npm run gen:docs` fails here; and a small DSL of its own shows the mapping (paths,
 * arrays, records, unions of kinds, defaults, units).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { policyReference, REFERENCE_FILE } from "../../../compiler/emit/policy-reference.ts";

const dir = mkdtempSync(path.join(tmpdir(), "fe-policy-ref-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("docs/policy-reference.md", () => {
  it("is the one the DSL's types make (run `npm run gen:docs` after changing policy-dsl/types.ts)", () => {
    expect(readFileSync(REFERENCE_FILE, "utf8")).toBe(policyReference());
  });

  it("lists every option reached from PolicyInput by its path, with its doc, default and unit", () => {
    const types = path.join(dir, "types.ts");
    const base = `export interface Duration { readonly ms: number }
export type SinkProps = FileSink | HttpSink;
export interface FileSink {
  /** A file. */
  readonly kind: "file";
}
export interface HttpSink {
  readonly kind: "http";
  /** Per POST. @default seconds(5) */
  readonly timeout?: Duration;
}
/** What a tenant is. */
export interface TenantProps {
  /** Its id. */
  readonly id: string;
  /** Costs by name. @default {} */
  readonly costs?: Readonly<Record<string, CostProps>>;
}
export interface CostProps {
  /** Tokens. */
  readonly n: number;
}
export interface PolicyInput {
  /** Names the policy. */
  readonly name: string;
  readonly tenants: readonly TenantProps[];
  /** Where to ship. @default [] */
  readonly sinks?: readonly SinkProps[];
}
`;
    writeFileSync(types, base);
    const rows = policyReference(types).split("\n").filter((l) => l.startsWith("| `"));
    expect(rows).toEqual([
      "| `name` | `string` | required | Names the policy. |",
      "| `tenants[]` | `TenantProps[]` | required | What a tenant is. |",
      "| `tenants[].id` | `string` | required | Its id. |",
      "| `tenants[].costs` | `Readonly<Record<string, CostProps>>` | {} | Costs by name. |",
      "| `tenants[].costs.<key>.n` | `number` | required | Tokens. |",
      "| `sinks[]` | `SinkProps[]` | [] | Where to ship. |",
      '| `sinks[] (FileSink).kind` | `"file"` | required | A file. |',
      '| `sinks[] (HttpSink).kind` | `"http"` | required |  |',
      "| `sinks[] (HttpSink).timeout` | `Duration` | seconds(5) | Per POST. Unit: `Duration`. |",
    ]);
    writeFileSync(types, base.replace("/** Its id. */", "/** Its id, changed. */"));
    expect(policyReference(types)).toContain("| `tenants[].id` | `string` | required | Its id, changed. |");
  });
});
