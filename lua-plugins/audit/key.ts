/**
 * The audit key (checkpoint MACs, hashed query values), read once when the bundle loads: in
 * nginx that is init_by_lua, in the master, before the workers drop to their user, so the key
 * file can stay readable by root alone. A missing or short key fails the load, so `nginx -t`
 * refuses the bundle instead of the gateway running unsigned.
 */
import type { CData } from "ffi";
import * as policy from "../generated/policy";
import { ed25519PrivateKey } from "../auth/crypto";

const MIN_KEY = 32;

function read(file: string, what: string): string {
  const [f, err] = io.open(file, "rb");
  if (f === undefined) throw "audit: cannot read " + what + " " + file + ": " + tostring(err);
  const data = f.read("*a") as string | undefined;
  f.close();
  return data ?? "";
}

function load(): string {
  const cfg = policy.audit;
  if (cfg === undefined) return "";
  const key = read(cfg.key_file, "keyFile");
  if (key.length < MIN_KEY) throw "audit: keyFile " + cfg.key_file + " holds fewer than 32 bytes";
  return key;
}

/** The checkpoints' Ed25519 key, when the policy names one; one that does not load fails the bundle. */
function loadSigner(): CData | undefined {
  // Not `policy.audit?.x`: TSTL miscompiles an optional chain on a namespace import's member (FE3103).
  const cfg = policy.audit;
  const file = cfg === undefined ? undefined : cfg.ed25519_key_file;
  if (file === undefined) return undefined;
  const pkey = ed25519PrivateKey(read(file, "ed25519KeyFile"));
  if (pkey === undefined) throw "audit: ed25519KeyFile " + file + " is not an Ed25519 private key in PEM (PKCS#8; openssl genpkey -algorithm ed25519)";
  return pkey;
}

const key = load();
const signer = loadSigner();

export function auditKey(): string {
  return key;
}

export function auditSigner(): CData | undefined {
  return signer;
}
