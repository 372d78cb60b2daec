/**
 * The `fhir-edge demo` subcommands, one line each: the CLI's own --help lists them without
 * loading the demo (oidc-provider and the rest), and demo/cli.ts prints their full usage.
 */
export const DEMO_COMMANDS = [
  { name: "token", usage: 'token --tenant T --scope "..." [--patient ID]', summary: "print an access token minted by the running demo's authorization server" },
  { name: "patients", usage: "patients --tenant T", summary: "print the demo tenant's patient ids, one a line" },
] as const;

export type DemoCommand = (typeof DEMO_COMMANDS)[number]["name"];

export function isDemoCommand(s: string | undefined): s is DemoCommand {
  return DEMO_COMMANDS.some((c) => c.name === s);
}
