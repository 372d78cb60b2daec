/** `npm run gen:docs`: writes docs/policy-reference.md from policy-dsl/types.ts. */
import { writeFileSync } from "node:fs";
import { policyReference, REFERENCE_FILE } from "../emit/policy-reference.ts";

writeFileSync(REFERENCE_FILE, policyReference());
console.log(`wrote ${REFERENCE_FILE}`);
