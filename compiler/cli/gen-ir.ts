/** `npm run gen:ir`: writes lua-plugins/generated/policy.d.ts from compiler/ir.ts. */
import { writeFileSync } from "node:fs";
import { DECL_FILE, irDeclaration } from "../emit/ir-decl.ts";

writeFileSync(DECL_FILE, irDeclaration());
console.log(`wrote ${DECL_FILE}`);
