/** An in-memory hook source for the hook-check tests: no fixture folders, and a stub of the hook API. */
import { Project, type SourceFile } from "ts-morph";

const API = `export interface RequestView { readonly tenant: string; readonly cost: number; readonly patient: string | undefined; readonly sub: string | undefined }
export type Verdict = undefined | { readonly deny: string };
`;

export function hookSource(text: string, file = "/policy/ward.hooks.ts"): SourceFile {
  const project = new Project({ useInMemoryFileSystem: true, compilerOptions: { strict: true, noEmit: true, target: 9 /* ES2022 */, lib: ["lib.es2022.d.ts"], paths: { "fhir-edge/hooks": ["/api/hooks.ts"] }, baseUrl: "/" } });
  project.createSourceFile("/api/hooks.ts", API);
  return project.createSourceFile(file, text);
}

/** `code path: message` of each finding, the path without the folder. */
export function lines(ds: readonly { code: string; path: string; message: string }[]): string[] {
  return ds.map((d) => `${d.code} ${d.path.replace("/policy/", "")}: ${d.message}`);
}
