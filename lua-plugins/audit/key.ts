/**
 * The audit key (checkpoint MACs, hashed query values), read once when the bundle loads: in
 * nginx that is init_by_lua, in the master, before the workers drop to their user, so the key
 * file can stay readable by root alone. A missing or short key fails the load, so `nginx -t`
 * refuses the bundle instead of the gateway running unsigned.
 */
import * as policy from "../generated/policy";

const MIN_KEY = 32;

function load(): string {
  const cfg = policy.audit;
  if (cfg === undefined) return "";
  const [f, err] = io.open(cfg.key_file, "rb");
  if (f === undefined) throw "audit: cannot read keyFile " + cfg.key_file + ": " + tostring(err);
  const key = f.read("*a") as string | undefined;
  f.close();
  if (key === undefined || key.length < MIN_KEY) throw "audit: keyFile " + cfg.key_file + " holds fewer than 32 bytes";
  return key;
}

const key = load();

export function auditKey(): string {
  return key;
}
