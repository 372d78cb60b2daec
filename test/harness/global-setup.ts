/**
 * Starts the real stack once for the integration project, all on ephemeral loopback ports:
 * the recording Medplum upstream, oidc-provider, and nginx running a bundle built from
 * test/harness/test.policy.ts. Tests reach it through `stack()` in ./env.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { buildBundle } from "../../compiler/bundle.ts";
import { activate, up, waitForVersion } from "../../compiler/control.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { startAuthz } from "../../demo/authz.ts";
import { startUpstream } from "../../demo/upstream.ts";
import type { StackInfo } from "./env.ts";
import { startMtlsFront } from "./mtls.ts";
import { freePort } from "./ports.ts";

const POLICY = path.resolve(import.meta.dirname, "test.policy.ts");

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const upstream = await startUpstream({ port: 0, tenants: ["acme", "globex", "hosty", "heady"] });
  const authz = await startAuthz({ port: 0, adminHooks: true });
  const stateDir = mkdtempSync(path.join(tmpdir(), "fhir-edge-it-"));
  const gatewayPort = await freePort();
  const adminPort = await freePort();

  process.env["FHIR_EDGE_TEST_UPSTREAM"] = upstream.url;
  process.env["FHIR_EDGE_TEST_ISSUER"] = authz.issuer;
  // The mtls tenant introspects through an HTTPS front that demands a client certificate.
  const mtls = await startMtlsFront(path.join(stateDir, "mtls"), authz.issuer);
  process.env["FHIR_EDGE_TEST_MTLS_URL"] = mtls.url;
  process.env["FHIR_EDGE_TEST_MTLS_DIR"] = path.join(stateDir, "mtls");
  // nginx (started below, and by `fhir-edge reload` in tests) reads it through `env`.
  process.env["FHIR_EDGE_TEST_INTROSPECTION_SECRET"] = authz.introspectionClient.secret;
  const built = await buildBundle({
    policyFile: POLICY,
    stateDir,
    options: { listen: `127.0.0.1:${gatewayPort}`, admin: `127.0.0.1:${adminPort}`, workers: 1 },
  });
  if (built.version === undefined) {
    throw new Error(`test policy does not build:\n${built.diagnostics.map(formatDiagnostic).join("\n")}`);
  }
  activate(stateDir, built.version);
  const nginx = await up({ stateDir, foreground: true });
  const admin = `http://127.0.0.1:${adminPort}`;
  if (!(await waitForVersion(`127.0.0.1:${adminPort}`, built.version, 10_000))) throw new Error(`gateway admin ${admin} did not report version ${built.version} within 10 s`);

  const info: StackInfo = {
    gateway: `http://127.0.0.1:${gatewayPort}`,
    gatewayPort,
    admin,
    upstream: upstream.url,
    authz: {
      issuer: authz.issuer,
      tokenEndpoint: authz.tokenEndpoint,
      client: authz.introspectionClient,
      demoClient: authz.demoClient,
      mtls: { url: mtls.url, ...mtls.files },
    },
    stateDir,
    errorLog: path.join(stateDir, "logs", "error.log"),
    policyFile: POLICY,
    version: built.version,
  };
  project.provide("stack", info);

  return async () => {
    const child = nginx.child;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGQUIT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    await mtls.close();
    await authz.close();
    await upstream.close();
    if (process.env["FHIR_EDGE_KEEP_STATE"] === undefined) rmSync(stateDir, { recursive: true, force: true });
  };
}
