/**
 * `fhir-edge demo <token|patients>`: talks to the stack `npm start` is running, found through
 * the `demo.json` it writes into the state dir. Prints only the answer on stdout, so
 * `TOKEN=$(npx fhir-edge demo token ...)` works.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { stateDirFrom } from "../compiler/state.ts";
import { mintTokenHttp } from "./authz.ts";
import { isDemoCommand } from "./commands.ts";

/** What demo/stack.ts writes for other processes, in `<state>/demo.json`. */
export interface DemoState {
  readonly pid: number;
  readonly gateway: string;
  readonly admin: string;
  readonly upstream: string;
  readonly tenants: readonly string[];
  readonly authz: {
    readonly issuer: string;
    readonly tokenEndpoint: string;
    readonly client: { readonly id: string; readonly secret: string };
  };
}

export const DEMO_STATE_FILE = "demo.json";

const USAGE = `usage:
  fhir-edge demo token --tenant T --scope "..." [--patient ID] [--fhir-user REF] [--opaque] [--alg RS256|ES256|PS256] [--expires-in SECONDS]
  fhir-edge demo patients --tenant T

Both need the demo stack running (npm start). Options: --state DIR (default $FHIR_EDGE_STATE or ./dist)`;

export function readDemoState(stateDir: string): DemoState {
  const file = path.join(stateDir, DEMO_STATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new DemoError(`no demo stack found (${file} is missing); start it with \`npm start\``);
  }
  return JSON.parse(text) as DemoState;
}

class DemoError extends Error {}

function requireTenant(state: DemoState, tenant: string | undefined): string {
  if (tenant === undefined || tenant === "") throw new DemoError(`--tenant is required (one of: ${state.tenants.join(", ")})`);
  if (!state.tenants.includes(tenant)) throw new DemoError(`unknown tenant ${JSON.stringify(tenant)}; the demo has: ${state.tenants.join(", ")}`);
  return tenant;
}

const ALGS = ["RS256", "ES256", "PS256"] as const;
type Alg = (typeof ALGS)[number];
const isAlg = (s: string): s is Alg => (ALGS as readonly string[]).includes(s);

async function token(state: DemoState, v: Record<string, string | boolean | undefined>, out: (s: string) => void): Promise<void> {
  const tenant = requireTenant(state, v["tenant"] as string | undefined);
  const scope = v["scope"] as string | undefined;
  if (scope === undefined || scope.trim() === "") throw new DemoError('--scope is required, e.g. --scope "patient/*.rs launch/patient"');
  const alg = (v["alg"] as string | undefined) ?? "RS256";
  if (!isAlg(alg)) throw new DemoError(`--alg must be one of ${ALGS.join(", ")}`);
  const expiresRaw = v["expires-in"] as string | undefined;
  const expiresIn = expiresRaw === undefined ? undefined : Number(expiresRaw);
  if (expiresIn !== undefined && (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 86_400)) {
    throw new DemoError("--expires-in must be an integer number of seconds, 1-86400");
  }
  const patient = v["patient"] as string | undefined;
  const fhirUser = v["fhir-user"] as string | undefined;
  const t = await mintTokenHttp(state.authz.tokenEndpoint, state.authz.client.id, state.authz.client.secret, {
    tenant,
    scope,
    format: v["opaque"] === true ? "opaque" : "jwt",
    alg,
    ...(patient !== undefined ? { patient } : {}),
    ...(fhirUser !== undefined ? { fhirUser } : {}),
    ...(expiresIn !== undefined ? { expiresIn } : {}),
  });
  out(t);
}

async function patients(state: DemoState, tenantFlag: string | undefined, out: (s: string) => void): Promise<void> {
  const tenant = requireTenant(state, tenantFlag);
  const res = await fetch(`${state.upstream}/__admin/patients/${encodeURIComponent(tenant)}`);
  if (!res.ok) throw new DemoError(`demo upstream answered ${res.status} for ${tenant}'s patients`);
  for (const id of (await res.json()) as string[]) out(id);
}

export async function runDemoCommand(argv: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h") {
    out(USAGE);
    return 0;
  }
  if (!isDemoCommand(sub)) {
    err(USAGE);
    return sub === undefined ? 0 : 2;
  }
  // `demo token --help`: the usage, as for `demo --help`, not an unknown option.
  if (rest.includes("--help") || rest.includes("-h")) {
    out(USAGE);
    return 0;
  }
  let values;
  try {
    values = parseArgs({
      args: rest,
      allowPositionals: false,
      options: {
        state: { type: "string" },
        tenant: { type: "string" },
        scope: { type: "string" },
        patient: { type: "string" },
        "fhir-user": { type: "string" },
        opaque: { type: "boolean" },
        alg: { type: "string" },
        "expires-in": { type: "string" },
      },
    }).values;
  } catch (e) {
    err(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const state = readDemoState(stateDirFrom(values.state));
    if (sub === "token") await token(state, values, out);
    else await patients(state, values.tenant, out);
    return 0;
  } catch (e) {
    if (e instanceof DemoError) {
      err(e.message);
      return 1;
    }
    if (e instanceof TypeError && /fetch failed/.test(e.message)) {
      err("the demo stack is not answering; is `npm start` still running?");
      return 1;
    }
    throw e;
  }
}
