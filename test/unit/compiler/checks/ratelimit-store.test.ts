import { describe, expect, it } from "vitest";
import { ratelimitStore } from "../../../../compiler/checks/ratelimit-store.ts";
import type { LimitsProps } from "../../../../policy-dsl/index.ts";
import { policy, tenant } from "../policy-builders.ts";

const withLimits = (limits: LimitsProps) => policy([tenant("a")], { limits });
const redis = (url: string) => ({ url, nodes: 2 });

describe("FE2603 ratelimit-store", () => {
  it("accepts the local store alone, and redis with its Redis", () => {
    expect(ratelimitStore.check(policy([tenant("a")]))).toEqual([]);
    expect(ratelimitStore.check(withLimits({}))).toEqual([]);
    expect(ratelimitStore.check(withLimits({ store: "local" }))).toEqual([]);
    expect(ratelimitStore.check(withLimits({ store: "redis", redis: redis("redis://127.0.0.1:6379/0") }))).toEqual([]);
  });

  it("requires limits.redis with store redis", () => {
    const ds = ratelimitStore.check(withLimits({ store: "redis" }));
    expect(ds.map((d) => [d.code, d.path, d.message])).toEqual([["FE2603", "limits.redis", 'is required with store "redis"']]);
    expect(ds[0]?.hint).toContain("redis://");
  });

  it("refuses a redis the store never reads, given or by default", () => {
    for (const limits of [{ redis: redis("redis://h") }, { store: "local" as const, redis: redis("redis://h") }]) {
      const ds = ratelimitStore.check(withLimits(limits));
      expect(ds.map((d) => [d.path, d.hint])).toEqual([["limits.redis", 'set store "redis" or remove redis']]);
      expect(ds[0]?.message).toContain('limits.store is "local"');
    }
  });

  it.each(["redis://h", "redis://h:6380", "redis://h/", "redis://h/15", "redis://:secret@h:6379/2", "redis://10.0.0.5:6379/0"])("accepts the url %s", (url) => {
    expect(ratelimitStore.check(withLimits({ store: "redis", redis: redis(url) }))).toEqual([]);
  });

  it.each([
    ["redis://", "has no host"],
    ["redis:///0", "has no host"],
    ["redis://h/a", 'database "a" is not a number'],
    ["redis://h/0/1", 'database "0/1" is not a number'],
    ["redis://h/-1", 'database "-1" is not a number'],
    ["redis://h:70000", "is not a URL"],
    ["redis://h:0/0", "port 0"],
    ["redis://h/0?db=1", "query"],
    ["redis://user:pw@h", "names a user"],
    ["rediss://h", "scheme"],
  ])("refuses the url %s", (url, fragment) => {
    const ds = ratelimitStore.check(withLimits({ store: "redis", redis: redis(url) }));
    expect(ds.map((d) => d.path)).toEqual(["limits.redis.url"]);
    expect(ds[0]?.message).toContain(fragment);
    expect(ds[0]?.hint).toBeDefined();
  });

  it("reports a bad url and a missing store together", () => {
    const ds = ratelimitStore.check(withLimits({ redis: redis("redis://h/x") }));
    expect(ds.map((d) => d.path)).toEqual(["limits.redis", "limits.redis.url"]);
  });
});
