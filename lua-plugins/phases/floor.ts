/**
 * The benchmark's floor (`emptyLua` in the build options): every Lua phase of the gateway's
 * conf, doing nothing. What a request costs here is the price of having Lua phases at all.
 */
export function access(this: void): void {
  // Empty on purpose.
}

export function log(this: void): void {
  // Empty on purpose.
}
