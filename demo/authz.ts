/**
 * The demo and test authorization server: a real oidc-provider issuing SMART-scoped access
 * tokens for the client_credentials grant, either as JWTs (RS256, PS256 or ES256, keys in JWKS)
 * or opaque (RFC 7662 introspection, RFC 7009 revocation). Tokens carry `tenant`, and optionally
 * `patient` and `fhirUser`, as claims or as introspection fields.
 *
 * The token request picks the format and claims with extra form fields (`token_format`, `alg`,
 * `tenant`, `patient`, `fhir_user`, `expires_in`): this is a test peer, so the client says
 * what it wants and gets it, which lets tests reach every branch of the gateway.
 *
 *   npx tsx demo/authz.ts [--port 8104]
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign as cryptoSign, type JsonWebKey } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from "oidc-provider";

export const DEFAULT_AUDIENCE = "https://fhir-edge.local/fhir";

export type TokenAlg = "RS256" | "ES256" | "PS256";

export interface MintRequest {
  readonly tenant: string;
  /** Space-separated SMART scopes, e.g. "patient/Observation.rs launch/patient". */
  readonly scope: string;
  readonly patient?: string;
  readonly fhirUser?: string;
  /** @default "jwt" */
  readonly format?: "jwt" | "opaque";
  /** @default "RS256" */
  readonly alg?: TokenAlg;
  /** Seconds, 1-86400. @default 600 */
  readonly expiresIn?: number;
  /** Resource indicator, which becomes `aud`. @default the server's audience */
  readonly audience?: string;
}

export interface ClientCredentials {
  readonly id: string;
  readonly secret: string;
}

export interface AuthzCounters {
  jwks: number;
  introspection: number;
  token: number;
  discovery: number;
}

export interface Authz {
  /** http://host:port */
  readonly issuer: string;
  readonly port: number;
  readonly audience: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly introspectionEndpoint: string;
  readonly revocationEndpoint: string;
  /** The client the demo app mints tokens with (client_credentials). */
  readonly demoClient: ClientCredentials;
  /** The client the gateway introspects with (client_secret_basic). */
  readonly introspectionClient: ClientCredentials;
  mintToken(req: MintRequest): Promise<string>;
  revoke(token: string): Promise<void>;
  counters(): AuthzCounters;
  resetCounters(): void;
  /** New signing keys (new kids); clients, secrets and issued opaque tokens stay. */
  rotateKeys(): void;
  /** Signs arbitrary claims with the current key for `alg`: lets tests forge edge cases. */
  sign(claims: Record<string, unknown>, alg?: TokenAlg): string;
  /** Stops listening for `ms`, dropping open connections, then listens again on the same port. */
  pause(ms: number): Promise<void>;
  /** For the next `forMs`, answer introspection only after `delayMs`. */
  slowIntrospection(delayMs: number, forMs: number): void;
  close(): Promise<void>;
}

export interface AuthzOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** @default DEFAULT_AUDIENCE */
  readonly audience?: string;
  /** Fixed client secrets, so a restarted demo keeps working with saved settings. @default random */
  readonly secrets?: { readonly demo?: string; readonly gateway?: string };
  /**
   * Serve the test hooks over HTTP under /__admin (counters, rotate, sign, pause), for tests
   * in other processes. Never in the demo: `sign` mints any token. @default false
   */
  readonly adminHooks?: boolean;
}

/**
 * SMART v1 (`patient/Observation.read`) and v2 (`patient/Observation.rs`, with optional query
 * constraints) resource scopes, launch scopes, the OpenID ones a SMART client may send, and
 * `break-glass`, the example policy's break-glass scope (granted to any client that asks: a
 * real server grants it only to those who may break glass). Each slash may also be `%2F` (or
 * `%2f`), as Entra ID issues them (`patient%2FObservation.rs`), so tests can send the gateway
 * the scopes real servers put in tokens; the token carries the scope as it was asked for.
 */
const SMART_SCOPE =
  /^((patient|user|system)(\/|%2[Ff])(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)(\?[A-Za-z0-9_.:|,=&-]+)?|launch((\/|%2[Ff])(patient|encounter))?|openid|fhirUser|profile|offline_access|online_access|break-glass)$/;

export function isSmartScope(s: string): boolean {
  return s !== "" && SMART_SCOPE.test(s);
}

const ALGS: readonly TokenAlg[] = ["RS256", "ES256", "PS256"];

/** A form field of the token request, as oidc-provider parsed it. */
function field(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const body = (ctx.oidc as unknown as { body?: Record<string, unknown> }).body;
  const v = body?.[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function keys(): JsonWebKey[] {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  const id = randomBytes(4).toString("hex");
  // One RSA key serves RS256 and PS256; oidc-provider picks a key by its type for the alg.
  return [
    { ...rsa, kid: `rsa-${id}`, use: "sig" },
    { ...ec, kid: `ec-${id}`, use: "sig", alg: "ES256" },
  ];
}

export async function mintTokenHttp(tokenEndpoint: string, clientId: string, secret: string, req: MintRequest): Promise<string> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    scope: req.scope,
    tenant: req.tenant,
    token_format: req.format ?? "jwt",
    alg: req.alg ?? "RS256",
  });
  if (req.patient !== undefined) form.set("patient", req.patient);
  if (req.fhirUser !== undefined) form.set("fhir_user", req.fhirUser);
  if (req.expiresIn !== undefined) form.set("expires_in", String(req.expiresIn));
  if (req.audience !== undefined) form.set("resource", req.audience);
  const res = await fetch(tokenEndpoint, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: form,
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || body.access_token === undefined) {
    throw new Error(`token request failed (${res.status}): ${body.error ?? ""} ${body.error_description ?? ""}`.trim());
  }
  return body.access_token;
}

export async function startAuthz(opts: AuthzOptions): Promise<Authz> {
  const host = opts.host ?? "127.0.0.1";
  const audience = opts.audience ?? DEFAULT_AUDIENCE;
  const demoClient: ClientCredentials = { id: "demo-app", secret: opts.secrets?.demo ?? randomBytes(24).toString("base64url") };
  const introspectionClient: ClientCredentials = { id: "fhir-edge-gateway", secret: opts.secrets?.gateway ?? randomBytes(24).toString("base64url") };
  const counters: AuthzCounters = { jwks: 0, introspection: 0, token: 0, discovery: 0 };

  // Listen first: the issuer must carry the real port, which port 0 only reveals after listen.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  let slow = { delayMs: 0, until: 0 };
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/jwks") counters.jwks += 1;
    else if (path === "/token/introspection") counters.introspection += 1;
    else if (path === "/token") counters.token += 1;
    else if (path === "/.well-known/openid-configuration") counters.discovery += 1;
    if (path === "/token/introspection" && Date.now() < slow.until) setTimeout(() => handler(req, res), slow.delayMs);
    else handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${host}:${port}`;

  let currentKeys = keys();
  const makeConfiguration = (): Configuration => ({
    clients: [
      {
        client_id: demoClient.id,
        client_secret: demoClient.secret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      },
      {
        client_id: introspectionClient.id,
        client_secret: introspectionClient.secret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: currentKeys as never },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the gateway may introspect; the demo app must not read other tokens' contents.
        allowedPolicy: async (ctx) => ctx.oidc.client?.clientId === introspectionClient.id,
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resource) => {
          if (!/^https?:\/\//.test(resource)) throw new errors.InvalidTarget("resource must be an absolute http(s) URL");
          const requested = (field(ctx, "scope") ?? "").split(" ").filter((s) => s !== "");
          const bad = requested.find((s) => !isSmartScope(s));
          if (bad !== undefined) throw new errors.InvalidScope("not a SMART scope", bad);
          const format = field(ctx, "token_format") ?? "jwt";
          if (format !== "jwt" && format !== "opaque") throw new errors.InvalidRequest("token_format must be jwt or opaque");
          const alg = (field(ctx, "alg") ?? "RS256") as TokenAlg;
          if (!ALGS.includes(alg)) throw new errors.InvalidRequest(`alg must be one of ${ALGS.join(", ")}`);
          const ttl = Number(field(ctx, "expires_in") ?? "600");
          if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new errors.InvalidRequest("expires_in must be 1-86400 seconds");
          return {
            scope: requested.join(" "),
            audience: resource,
            accessTokenTTL: ttl,
            accessTokenFormat: format,
            ...(format === "jwt" ? { jwt: { sign: { alg } } } : {}),
          };
        },
      },
    },
    extraTokenClaims: async (ctx) => {
      const tenant = field(ctx, "tenant");
      const patient = field(ctx, "patient");
      const fhirUser = field(ctx, "fhir_user");
      return {
        ...(tenant !== undefined ? { tenant } : {}),
        ...(patient !== undefined ? { patient } : {}),
        ...(fhirUser !== undefined ? { fhirUser } : {}),
      };
    },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    ttl: {
      // The resource server's TTL (from expires_in) decides; this is only the fallback.
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
    },
    enabledJWA: {
      clientAuthSigningAlgValues: ["RS256", "PS256", "ES256"],
    },
  });

  const install = (): void => {
    const provider = new Provider(issuer, makeConfiguration());
    // The demo runs on plain http on loopback; this is a test peer, not a production issuer.
    provider.proxy = false;
    const callback = provider.callback();
    handler = opts.adminHooks === true ? (req, res) => {
            void admin(req, res).then((done) => {
              if (!done) void callback(req, res);
            });
          } : callback;
  };

  const rotateKeys = (): void => {
    // oidc-provider's memory adapter is module-wide, so opaque tokens survive the new provider.
    currentKeys = keys();
    install();
  };

  const sign = (claims: Record<string, unknown>, alg: TokenAlg = "RS256"): string => {
    const jwk = currentKeys.find((k) => (alg === "ES256" ? k.kty === "EC" : k.kty === "RSA"));
    if (jwk === undefined) throw new Error(`no key for ${alg}`);
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");
    const input = `${b64({ alg, kid: jwk.kid, typ: "at+jwt" })}.${b64(claims)}`;
    const key = createPrivateKey({ key: jwk, format: "jwk" });
    const digest = "sha256";
    const sig =
      alg === "ES256"
        ? cryptoSign(digest, Buffer.from(input), { key, dsaEncoding: "ieee-p1363" })
        : alg === "PS256"
          ? cryptoSign(digest, Buffer.from(input), { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 })
          : cryptoSign(digest, Buffer.from(input), key);
    return `${input}.${sig.toString("base64url")}`;
  };

  const pause = async (ms: number): Promise<void> => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    setTimeout(() => server.listen(port, host), ms);
  };

  const slowIntrospection = (delayMs: number, forMs: number): void => {
    slow = { delayMs, until: Date.now() + forMs };
  };

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => resolve(body));
      req.on("error", reject);
    });

  /** The /__admin test hooks; true when the request was one of them. */
  const admin = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? "/", issuer);
    if (!url.pathname.startsWith("/__admin/")) return false;
    const json = (status: number, v: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(v));
    };
    const route = `${req.method ?? ""} ${url.pathname}`;
    if (route === "GET /__admin/counters") json(200, { ...counters });
    else if (route === "DELETE /__admin/counters") {
      resetCounters();
      json(200, {});
    } else if (route === "POST /__admin/rotate") {
      rotateKeys();
      json(200, { kids: currentKeys.map((k) => k.kid) });
    } else if (route === "POST /__admin/sign") {
      const body = JSON.parse(await readBody(req)) as { claims: Record<string, unknown>; alg?: TokenAlg };
      json(200, { token: sign(body.claims, body.alg) });
    } else if (route === "POST /__admin/slow") {
      slowIntrospection(Number(url.searchParams.get("delay") ?? "1000"), Number(url.searchParams.get("for") ?? "5000"));
      json(200, {});
    } else if (route === "POST /__admin/pause") {
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      json(200, { paused: ms });
      res.once("finish", () => void pause(ms));
    } else json(404, { error: "no such hook" });
    return true;
  };

  const resetCounters = (): void => {
    counters.jwks = 0;
    counters.introspection = 0;
    counters.token = 0;
    counters.discovery = 0;
  };

  install();

  const tokenEndpoint = `${issuer}/token`;
  return {
    issuer,
    port,
    audience,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    introspectionEndpoint: `${issuer}/token/introspection`,
    revocationEndpoint: `${issuer}/token/revocation`,
    demoClient,
    introspectionClient,
    mintToken: (req) => mintTokenHttp(tokenEndpoint, demoClient.id, demoClient.secret, req),
    revoke: async (token) => {
      // Revocation is authenticated as the client the token was issued to.
      const res = await fetch(`${issuer}/token/revocation`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${demoClient.id}:${demoClient.secret}`).toString("base64")}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ token }),
      });
      if (!res.ok) throw new Error(`revocation failed: ${res.status} ${await res.text()}`);
    },
    counters: () => ({ ...counters }),
    resetCounters,
    rotateKeys,
    sign,
    pause,
    slowIntrospection,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" } } });
  const a = await startAuthz({ port: Number(values.port ?? "8104"), ...(values.host !== undefined ? { host: values.host } : {}) });
  console.log(`demo authorization server: ${a.issuer}`);
  console.log(`  demo client: ${a.demoClient.id} / ${a.demoClient.secret}`);
  console.log(`  introspection client: ${a.introspectionClient.id} / ${a.introspectionClient.secret}`);
  const stop = (): void => void a.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
