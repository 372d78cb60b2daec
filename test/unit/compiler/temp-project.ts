/**
 * Throwaway projects for compiler tests: a policy dir, a state dir, and a stub runtime repo whose
 * `lua-plugins/` is a few phase entry points (enough for nginx -t and /healthz), so these tests
 * do not depend on the state of the real lua-plugins.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const DSL = path.join(REPO, "policy-dsl", "index.ts");

const STUB_PLUGINS: Record<string, string> = {
  "phases/init.ts": "export function init(this: void): void {}\nexport function init_worker(this: void): void {}\n",
  "phases/access.ts": "export function run(this: void): void {}\n",
  "phases/header_filter.ts": "export function run(this: void): void {}\n",
  "phases/log.ts": "export function run(this: void): void {}\n",
  "phases/errors.ts": "export function from_nginx(this: void): void {}\n",
  "phases/admin.ts": [
    "declare const ngx: { say(this: void, s: string): void; header: Record<string, string> };",
    "declare function require(this: void, m: string): { version: string };",
    "export function healthz(this: void): void {",
    '  ngx.header["Content-Type"] = "application/json";',
    '  ngx.say(\'{"status":"ok","version":"\' + require("generated.policy").version + \'"}\');',
    "}",
    'export function metrics(this: void): void { ngx.say(""); }',
    "",
  ].join("\n"),
};

export interface TempProject {
  readonly root: string;
  readonly policyFile: string;
  readonly stateDir: string;
  readonly repoRoot: string;
  writePolicy(body: string): void;
  writeFile(rel: string, text: string): void;
  cleanup(): void;
}

/** `body` is the object passed to definePolicy, as TypeScript source. */
export function policySource(body: string): string {
  return `import { definePolicy, seconds } from ${JSON.stringify(DSL)};\nvoid seconds;\nexport default definePolicy(${body});\n`;
}

export function tempProject(): TempProject {
  const root = mkdtempSync(path.join(tmpdir(), "fhir-edge-unit-"));
  // nginx workers run as nobody when the tests run as root; they must reach the bundle.
  chmodSync(root, 0o755);
  const repoRoot = path.join(root, "repo");
  mkdirSync(path.join(repoRoot, "lua-plugins", "phases"), { recursive: true });
  symlinkSync(path.join(REPO, "node_modules"), path.join(repoRoot, "node_modules"));
  const config = JSON.parse(readFileSync(path.join(REPO, "tsconfig.lua.json"), "utf8")) as { compilerOptions: Record<string, unknown> };
  // TypeScript 6 flags moduleResolution=node10 as deprecated; TSTL still needs it.
  config.compilerOptions["ignoreDeprecations"] = "6.0";
  writeFileSync(path.join(repoRoot, "tsconfig.lua.json"), JSON.stringify(config, null, 2));
  for (const [rel, text] of Object.entries(STUB_PLUGINS)) writeFileSync(path.join(repoRoot, "lua-plugins", rel), text);
  mkdirSync(path.join(root, "policy"));
  const p: TempProject = {
    root,
    repoRoot,
    policyFile: path.join(root, "policy", "gateway.policy.ts"),
    stateDir: path.join(root, "state"),
    writePolicy: (body) => writeFileSync(p.policyFile, policySource(body)),
    writeFile: (rel, text) => {
      const full = path.join(root, "policy", rel);
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, text);
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  return p;
}

export const TWO_TENANTS = `{
  name: "t",
  tenants: [
    { id: "acme", pathPrefix: "/acme", upstream: { url: "http://127.0.0.1:8103/acme/R4", readTimeout: seconds(45) }, anonymous: true },
    { id: "globex", pathPrefix: "/globex", upstream: { url: "http://127.0.0.1:8103/globex/R4" }, anonymous: true },
  ],
}`;
