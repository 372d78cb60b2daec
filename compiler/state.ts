/** The state dir a command uses: its --state flag, else $FHIR_EDGE_STATE, else ./dist. */
export function stateDirFrom(flag: string | undefined): string {
  return flag ?? process.env["FHIR_EDGE_STATE"] ?? "dist";
}
