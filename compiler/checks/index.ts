import type { Check } from "./types.ts";
import { duplicateHeaderValue } from "./duplicate-header-value.ts";
import { duplicateHost } from "./duplicate-host.ts";
import { duplicateRouteId } from "./duplicate-route-id.ts";
import { duplicateTenantId } from "./duplicate-tenant-id.ts";
import { headerName } from "./header-name.ts";
import { operationName } from "./operation-name.ts";
import { pathPrefixOverlap } from "./path-prefix-overlap.ts";
import { unknownInteraction } from "./unknown-interaction.ts";
import { unknownResourceType } from "./unknown-resource-type.ts";
import { unreachableTenant } from "./unreachable-tenant.ts";
import { upstreamUrl } from "./upstream-url.ts";
import { tenantAuth } from "./tenant-auth.ts";
import { unknownIssuer } from "./unknown-issuer.ts";
import { duplicateIssuer } from "./duplicate-issuer.ts";
import { issuerUrls } from "./issuer-urls.ts";
import { issuerMode } from "./issuer-mode.ts";
import { budgetBurst } from "./budget-burst.ts";
import { duplicateBudgetId } from "./duplicate-budget-id.ts";
import { ratelimitStore } from "./ratelimit-store.ts";
import { budgetKeyAnonymous } from "./budget-key-anonymous.ts";

import { budgetRateCheck } from "./budget-rate.ts";
import { cacheTypeUnknown } from "./cache-type-unknown.ts";
import { cacheSharedPhi } from "./cache-shared-phi.ts";
import { cacheSharedTtl } from "./cache-shared-ttl.ts";
import { cacheMissBudgetBurst } from "./cache-miss-budget-burst.ts";
import { breakGlassCheck } from "./break-glass.ts";

export type { Check } from "./types.ts";

/** Every semantic rule, in code order. A new rule takes a new code; old codes are never reused. */
export const CHECKS: readonly Check[] = [
  pathPrefixOverlap,
  duplicateTenantId,
  duplicateHost,
  duplicateHeaderValue,
  unreachableTenant,
  upstreamUrl,
  unknownResourceType,
  unknownInteraction,
  duplicateRouteId,
  operationName,
  headerName,
  tenantAuth,
  unknownIssuer,
  duplicateIssuer,
  issuerUrls,
  issuerMode,
  budgetBurst,
  duplicateBudgetId,
  ratelimitStore,
  budgetKeyAnonymous,
  budgetRateCheck,
  cacheTypeUnknown,
  cacheSharedPhi,
  cacheSharedTtl,
  cacheMissBudgetBurst,
  breakGlassCheck,
];
