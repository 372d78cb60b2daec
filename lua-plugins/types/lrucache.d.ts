/** lua-resty-lrucache (Debian's lua-resty-lrucache): a per-worker LRU of Lua values. */
declare module "resty.lrucache" {
  export interface LruCache<V> {
    /** The value (undefined when absent or expired); a stale value comes second. */
    get(this: LruCache<V>, key: string): LuaMultiReturn<[V | undefined, V | undefined]>;
    /** `ttl` in seconds; undefined keeps the value until it is evicted. */
    set(this: LruCache<V>, key: string, value: V, ttl?: number): void;
    delete(this: LruCache<V>, key: string): void;
  }
  /** @noSelf */
  function create<V>(size: number): LuaMultiReturn<[LruCache<V> | undefined, string | undefined]>;
  export { create as new };
}
