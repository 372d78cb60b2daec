/**
 * The benchmark's gateway policy: the example policy's shape (two tenants by path prefix) on
 * the static bench upstream. BENCH_ROUTES=off drops the route tables, to show their cost.
 * BENCH_AUTH=on makes both tenants require tokens from FHIR_EDGE_BENCH_ISSUER (the demo
 * oidc-provider the bench starts); otherwise they are anonymous (pass-through).
 * BENCH_LIMITS=local|redis|sync gives both tenants two budgets that every request spends from
 * (the tenant's, and one per interaction class), in this node's dict, in Redis with a script
 * per request (FHIR_EDGE_BENCH_REDIS), or counted locally and synced every 100 ms. They are
 * sized never to refuse: the bench measures what admitting costs.
 * BENCH_CACHE=on caches every type the scenarios read, for an hour (so after the warm-up the
 * cacheable requests are hits); BENCH_CACHE=miss keeps the same cache but stores nothing
 * (maxEntry 0), so every cacheable request takes the miss path through the cache location.
 * BENCH_AUDIT=on records every request in the audit trail (spool, chain, checkpoints) and
 * ships it to a file sink, all in the one worker; BENCH_AUDIT=durable also makes writes reach
 * the spool before their response, and BENCH_AUDIT=fsync fsyncs that write. The key is
 * FHIR_EDGE_BENCH_AUDIT_KEY (bench/targets.ts makes one per target).
 */
import { definePolicy, kilobytes, milliseconds, perSecond, seconds, tokens, type BudgetProps, type AuditProps, type LimitsProps, type RouteProps, type TenantCacheProps, type TenantProps } from "fhir-edge";

const upstream = process.env["FHIR_EDGE_BENCH_UPSTREAM"] ?? "http://127.0.0.1:8199";
const routes = (r: RouteProps[]): RouteProps[] => (process.env["BENCH_ROUTES"] === "off" ? [] : r);
const auth = process.env["BENCH_AUTH"] === "on";
const access: Pick<TenantProps, "issuers" | "anonymous"> = auth ? { issuers: ["bench"] } : { anonymous: true };
const limits = process.env["BENCH_LIMITS"];
const budgets: BudgetProps[] =
  limits === undefined
    ? []
    : [
        { id: "tenant", rate: perSecond(1_000_000), burst: tokens(100_000_000) },
        { id: "per-class", per: ["class"], rate: perSecond(1_000_000), burst: tokens(100_000_000) },
      ];
const caching = process.env["BENCH_CACHE"];
const hour = seconds(3600);
const cache: Pick<TenantProps, "cache"> =
  caching === undefined
    ? {}
    : { cache: { ttl: { metadata: hour, ValueSet: hour, CodeSystem: hour, Patient: hour, Observation: hour, Encounter: hour, Condition: hour } } satisfies TenantCacheProps };
const auditing = process.env["BENCH_AUDIT"];
const audit: { audit?: AuditProps } =
  auditing === undefined
    ? {}
    : {
        audit: {
          keyFile: process.env["FHIR_EDGE_BENCH_AUDIT_KEY"] ?? "",
          durable: auditing === "durable" || auditing === "fsync" ? ["write"] : [],
          fsync: auditing === "fsync",
          sinks: [{ id: "file", kind: "file" }],
        },
      };
const store: LimitsProps =
  limits === "redis" || limits === "sync"
    ? { store: "redis", redis: { url: process.env["FHIR_EDGE_BENCH_REDIS"] ?? "redis://127.0.0.1:6379", nodes: 1, ...(limits === "sync" ? { sync: milliseconds(100) } : {}) } }
    : {};

export default definePolicy({
  name: "bench",
  limits: store,
  ...(caching === "miss" ? { cache: { maxEntry: kilobytes(0) } } : {}),
  ...audit,
  resolution: { order: ["claim", "path"] },
  issuers: auth
    ? [{ id: "bench", issuer: process.env["FHIR_EDGE_BENCH_ISSUER"] ?? "http://127.0.0.1:8104", audiences: ["https://fhir-edge.local/fhir"], mode: "jwt" }]
    : [],
  tenants: [
    {
      id: "acme",
      pathPrefix: "/acme",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/acme/R4`, keepalive: 64, readTimeout: seconds(30) },
      ...access,
      ...cache,
      budgets,
      // The cache scenario's terminology expansion (operations not listed are refused).
      operations: [{ name: "$expand", permission: "r" }],
      routes: routes([
        { id: "no-system-export", match: { interactions: ["operation-system"], operations: ["$export"] }, action: "deny" },
        { id: "obs-search", match: { interactions: ["search-type"], resourceTypes: ["Observation"] }, cost: 8 },
      ]),
    },
    {
      id: "globex",
      pathPrefix: "/globex",
      fhirBase: "/fhir",
      upstream: { url: `${upstream}/globex/R4`, keepalive: 64 },
      ...access,
      ...cache,
      budgets,
      // The export scenario's status polls; the kick-off itself needs system/*.rs.
      operations: [{ name: "$export-poll-status", permission: "r" }],
      routes: routes([{ id: "expensive-search", match: { interactions: ["search-type"], resourceTypes: ["Condition"] }, cost: 8 }]),
    },
  ],
});
