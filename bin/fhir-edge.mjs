#!/usr/bin/env node
// Registers tsx so the CLI (and the operator's gateway.policy.ts) run from TypeScript source.
import { register } from "tsx/esm/api";

register();
const { endQuietlyWhenOutputCloses } = await import("../compiler/cli/stdio.ts");
endQuietlyWhenOutputCloses();
const { main } = await import("../compiler/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
