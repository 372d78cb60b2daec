/**
 * Generation counters: one per (tenant, resource type) in `lua_shared_dict fe_cache_gen`, and
 * one per tenant (`*`) for searches that read other types. Each is part of the cache key, so a
 * bump makes every entry cached under the old value unreachable: the next read misses and
 * fetches the new version. Entries under old values are never served again and age out of the
 * disk by `inactive` and `maxSize`.
 *
 * A write bumps its type's counter and the tenant's `*` before the client sees its response
 * (the write location's header filter), so a read sent after the write's answer cannot be
 * served what the write replaced. The counters are this node's; see README.md for several
 * nodes. Bounded: tenants x cached types keys, each a number.
 */
const keys = new LuaTable<string, LuaTable<string, string>>();

/** `tenant\ttype`, built once per pair. */
export function genKey(tenant: string, type: string): string {
  let byType = keys.get(tenant);
  if (byType === undefined) {
    byType = new LuaTable();
    keys.set(tenant, byType);
  }
  let k = byType.get(type);
  if (k === undefined) {
    k = tenant + "\t" + type;
    byType.set(type, k);
  }
  return k;
}

export const ALL_TYPES = "*";

/** Dict key prefixes of the cluster's copy (cache/cluster): a count marked for the next push, and the count last read from Redis. */
export const DIRTY = "d\t";
export const REMOTE = "r\t";

/** `r\t<key>` per generation key, built once (tenants x cached types). */
const remoteKeys = new LuaTable<string, string>();

export function remoteKey(key: string): string {
  let k = remoteKeys.get(key);
  if (k === undefined) {
    k = REMOTE + key;
    remoteKeys.set(key, k);
  }
  return k;
}

/**
 * The generation in the key: this node's count, and with `clustered` (cache/cluster) also
 * the cluster's, `<epoch>/<count>` as last read from Redis (`r\t<key>`).
 */
export function generation(d: SharedDict, key: string, clustered: boolean): string {
  const [own] = d.get(key);
  const local = typeof own === "number" ? tostring(own) : "0";
  if (!clustered) return local;
  const [remote] = d.get(remoteKey(key));
  return local + ":" + (typeof remote === "string" ? remote : "-");
}

/**
 * Bumps every key of a space-separated list, and with `clustered` marks each dirty for the
 * next sync (`d\t<key>`); false when one could not be stored.
 */
export function bumpAll(d: SharedDict, list: string, clustered: boolean): boolean {
  let ok = true;
  for (const [k] of string.gmatch(list, "[^ ]+")) {
    if (k === undefined) continue;
    const [v] = d.incr(k, 1, 0);
    if (v === undefined) ok = false;
    if (clustered) {
      const [m] = d.incr(DIRTY + k, 1, 0);
      if (m === undefined) ok = false;
    }
  }
  return ok;
}
