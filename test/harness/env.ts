/**
 * What the global setup provides to integration tests (via vitest's provide/inject), and small
 * helpers to reach the stack it started.
 */
import { inject } from "vitest";

export interface StackInfo {
  /** http://127.0.0.1:PORT of the gateway */
  readonly gateway: string;
  readonly gatewayPort: number;
  /** http://127.0.0.1:PORT of the admin listener */
  readonly admin: string;
  /** http://127.0.0.1:PORT of the recording Medplum upstream */
  readonly upstream: string;
  readonly authz: {
    readonly issuer: string;
    readonly tokenEndpoint: string;
    readonly client: { readonly id: string; readonly secret: string };
    /** The client tests mint tokens with (client_credentials). */
    readonly demoClient: { readonly id: string; readonly secret: string };
    /** The HTTPS front of the introspection endpoint that requires a client certificate. */
    readonly mtls: { readonly url: string; readonly ca: string; readonly clientCert: string; readonly clientKey: string };
  };
  readonly stateDir: string;
  readonly errorLog: string;
  readonly policyFile: string;
  /** Built bundle version that the gateway serves at start. */
  readonly version: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

export function stack(): StackInfo {
  return inject("stack");
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly body?: string;
  readonly at: number;
}

/** Everything the upstream received since the last clear. */
export async function upstreamRequests(): Promise<RecordedRequest[]> {
  const res = await fetch(`${stack().upstream}/__admin/requests`);
  return (await res.json()) as RecordedRequest[];
}

export async function clearUpstream(): Promise<void> {
  await fetch(`${stack().upstream}/__admin/requests`, { method: "DELETE" });
}

export async function seededPatients(tenant: string): Promise<string[]> {
  const res = await fetch(`${stack().upstream}/__admin/patients/${tenant}`);
  return (await res.json()) as string[];
}
