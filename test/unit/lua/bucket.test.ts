/**
 * ratelimit/bucket under LuaJIT, over a table double of a lua_shared_dict (incr, safe_add,
 * expire and get, with expiry against a fake clock that is the `now` each step passes). A
 * scenario is a list of steps run in one Lua driver; `admit` composes the module as
 * ratelimit/step does: spend, then keep within the burst or give back above it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runLua } from "../../harness/luajit.ts";

/** An nginx-like event-loop time in seconds, with milliseconds. */
const T0 = 1764748732.123;

type Step =
  | { op: "admit"; key?: string; cost: number; now: number; rate: number; burst: number }
  /** admit at (the last refusal's now + its wait + delta), computed in Lua so no precision is lost on the way. */
  | { op: "retry"; key?: string; cost: number; delta: number; rate: number; burst: number }
  /** spend and give back, as when a later budget refuses the request. */
  | { op: "uncommit"; key?: string; cost: number; now: number; rate: number }
  | { op: "spend"; key?: string; cost: number; now: number; rate: number }
  | { op: "giveBack"; key?: string; cost: number }
  | { op: "debtOf"; key?: string; now: number; rate: number }
  /** the raw mark and seconds left to live, or nothing for an absent (or expired) key. */
  | { op: "raw"; key?: string; now: number }
  /** from now on safe_add answers "no memory", as a full lua_shared_dict does. */
  | { op: "full" }
  /** the next spend races another worker: its incr misses, then that worker's safe_add of `value` lands first. */
  | { op: "race"; value: number; ttl: number };

interface Out {
  ok?: boolean;
  debt?: number;
  err?: string;
  wait?: number;
  v?: number;
  ttl?: number;
  now?: number;
}

const DRIVER = String.raw`function(steps)
  local store, clock, full, race = {}, 0, false, nil
  local function live(k)
    local e = store[k]
    if e == nil then return nil end
    if e.exp ~= nil and e.exp <= clock then store[k] = nil return nil end
    return e
  end
  -- lua_shared_dict semantics: incr keeps the time to live, an expired key is absent, 0 is "never".
  local d = {}
  function d:incr(k, by)
    if race ~= nil then return nil, "not found", nil end
    local e = live(k)
    if e == nil then return nil, "not found", nil end
    if type(e.v) ~= "number" then return nil, "not a number", nil end
    e.v = e.v + by
    return e.v, nil, false
  end
  function d:safe_add(k, v, ttl)
    if race ~= nil then
      store[k] = { v = race.value, exp = clock + race.ttl }
      race = nil
    end
    if live(k) ~= nil then return false, "exists", false end
    if full then return false, "no memory", false end
    store[k] = { v = v, exp = ttl ~= 0 and clock + ttl or nil }
    return true, nil, false
  end
  function d:expire(k, ttl)
    local e = live(k)
    if e == nil then return nil, "not found" end
    e.exp = ttl ~= 0 and clock + ttl or nil
    return true, nil
  end
  function d:get(k)
    local e = live(k)
    if e == nil then return nil end
    return e.v, nil
  end
  local out = {}
  local lastNow, lastWait = 0, 0
  for i, s in ipairs(steps) do
    local key = s.key or "k"
    local r = {}
    if s.op == "admit" or s.op == "retry" then
      local now = s.now
      if s.op == "retry" then now = lastNow + lastWait + s.delta end
      clock = now
      r.now = now
      local debt, err = m.spend(d, key, s.cost, now, s.rate)
      r.debt, r.err = debt, err
      if debt ~= nil then
        if debt <= s.burst then
          m.keep(d, key, debt, s.rate)
          r.ok = true
        else
          m.giveBack(d, key, s.cost)
          r.ok = false
          r.wait = m.waitFor(debt, s.burst, s.rate)
          lastNow, lastWait = now, r.wait
        end
      end
    elseif s.op == "uncommit" then
      clock = s.now
      local debt, err = m.spend(d, key, s.cost, s.now, s.rate)
      r.debt, r.err = debt, err
      if debt ~= nil then m.giveBack(d, key, s.cost) end
    elseif s.op == "spend" then
      clock = s.now
      r.debt, r.err = m.spend(d, key, s.cost, s.now, s.rate)
    elseif s.op == "giveBack" then
      m.giveBack(d, key, s.cost)
    elseif s.op == "debtOf" then
      clock = s.now
      r.debt = m.debtOf(d, key, s.now, s.rate)
    elseif s.op == "raw" then
      clock = s.now
      local e = live(key)
      if e ~= nil then
        r.v = e.v
        r.ttl = e.exp and e.exp - clock or 0
      end
    elseif s.op == "full" then
      full = true
    elseif s.op == "race" then
      race = { value = s.value, ttl = s.ttl }
    end
    out[i] = r
  end
  return out
end`;

async function scenarios(list: readonly (readonly Step[])[]): Promise<Out[][]> {
  const rs = await runLua("ratelimit.bucket", DRIVER, list.map((steps) => [steps]));
  return rs.map((r, i) => {
    if (!r.ok) throw new Error(`scenario ${i} raised ${r.error}`);
    // cjson writes an empty list as {}.
    const v = r.values[0];
    return Array.isArray(v) ? (v as Out[]) : [];
  });
}

async function scenario(steps: readonly Step[]): Promise<Out[]> {
  const [out] = await scenarios([steps]);
  return out!;
}

const admits = (out: readonly Out[]): (boolean | undefined)[] => out.map((o) => o.ok);
const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

describe("ratelimit.bucket", () => {
  it("a full bucket admits its burst at once, then refuses", async () => {
    const ones = await scenario(times(12, () => ({ op: "admit", cost: 1, now: T0, rate: 1, burst: 10 })));
    expect(admits(ones)).toEqual([...times(10, () => true), false, false]);
    expect(ones.map((o) => o.debt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11]);
    // Cost 3 from 10: three fit (9), the fourth would owe 12 and is given back, and 1 still fits.
    const threes = await scenario([...times(4, () => ({ op: "admit" as const, cost: 3, now: T0, rate: 1, burst: 10 })), { op: "admit", cost: 1, now: T0, rate: 1, burst: 10 }, { op: "admit", cost: 1, now: T0, rate: 1, burst: 10 }]);
    expect(admits(threes)).toEqual([true, true, true, false, true, false]);
  });

  it("keeps each key's bucket apart", async () => {
    const out = await scenario([
      ...times(5, () => ({ op: "admit" as const, key: "a", cost: 2, now: T0, rate: 1, burst: 10 })),
      { op: "admit", key: "a", cost: 1, now: T0, rate: 1, burst: 10 },
      { op: "admit", key: "b", cost: 10, now: T0, rate: 1, burst: 10 },
    ]);
    expect(admits(out)).toEqual([true, true, true, true, true, false, true]);
  });

  it("refills at its rate, never above its burst", async () => {
    const b = { cost: 1, rate: 2, burst: 4 };
    const out = await scenario([
      ...times(4, () => ({ op: "admit" as const, now: T0, ...b })),
      { op: "admit", now: T0, ...b },
      // One token every 0.5 s.
      { op: "admit", now: T0 + 0.499, ...b },
      { op: "admit", now: T0 + 0.5, ...b },
      { op: "admit", now: T0 + 0.5, ...b },
      { op: "debtOf", now: T0 + 1.5, rate: 2 },
      // Long idle: full again (burst 4), not 2 * 100 tokens.
      ...times(5, () => ({ op: "admit" as const, now: T0 + 100, ...b })),
    ]);
    expect(admits(out)).toEqual([true, true, true, true, false, false, true, false, undefined, true, true, true, true, false]);
    expect(out[8]!.debt).toBeCloseTo(2, 9);
  });

  it("gives back exactly what it spent", async () => {
    const out = await scenario([
      { op: "admit", cost: 4, now: T0, rate: 1, burst: 10 },
      { op: "raw", now: T0 + 1 },
      { op: "debtOf", now: T0 + 1, rate: 1 },
      { op: "spend", cost: 5, now: T0 + 1, rate: 1 },
      { op: "giveBack", cost: 5 },
      { op: "raw", now: T0 + 1 },
      { op: "debtOf", now: T0 + 1, rate: 1 },
      // A refusal's give-back too: 3 + 8 > 10, and the bucket is left as it was.
      { op: "admit", cost: 8, now: T0 + 1, rate: 1, burst: 10 },
      { op: "raw", now: T0 + 1 },
      { op: "admit", cost: 7, now: T0 + 1, rate: 1, burst: 10 },
    ]);
    expect(out[3]!.debt).toBeCloseTo(8, 9);
    expect(out[5]!.v).toBe(out[1]!.v);
    expect(out[6]!.debt).toBe(out[2]!.debt);
    expect(out[7]!.ok).toBe(false);
    expect(out[8]!.v).toBe(out[1]!.v);
    expect(out[9]!.ok).toBe(true);
  });

  // A spend that creates the bucket (safe_add with a time to live of cost/rate) and is then
  // given back because a later budget refused leaves the mark at `now * rate` of that moment
  // while the key lives on. Later spends saw a debt below their cost and reported the cost, the
  // mark stayed behind the clock, and a bucket of 10 admitted 14 (found by this test); spend
  // now brings a mark that is behind up to the clock.
  it("after a later budget's refusal gives back the first spend, still admits only its burst", async () => {
    const b = { cost: 1, rate: 1, burst: 10 };
    const out = await scenario([{ op: "uncommit", cost: 5, now: T0, rate: 1 }, ...times(15, () => ({ op: "admit" as const, now: T0 + 4, ...b }))]);
    expect(admits(out.slice(1)).filter((ok) => ok === true)).toHaveLength(10);
  });

  it("an expired key is a full bucket, and the key lives exactly until the bucket is full", async () => {
    const out = await scenario([
      ...times(3, () => ({ op: "admit" as const, cost: 2, now: T0, rate: 2, burst: 6 })),
      // 6 tokens owed at 2 a second: full at T0 + 3, the key expires a millisecond later.
      { op: "raw", now: T0 + 2.99 },
      { op: "raw", now: T0 + 3.002 },
      { op: "debtOf", now: T0 + 3.002, rate: 2 },
      ...times(4, () => ({ op: "admit" as const, cost: 2, now: T0 + 3.002, rate: 2, burst: 6 })),
    ]);
    expect(out[3]!.v).toBeDefined();
    expect(out[3]!.ttl).toBeCloseTo(0.011, 6);
    expect(out[4]).toEqual({});
    expect(out[5]!.debt).toBe(0);
    expect(admits(out.slice(6))).toEqual([true, true, true, false]);
  });

  it("fails closed with dict_full when a new bucket does not fit, and keeps counting the buckets it has", async () => {
    const out = await scenario([
      { op: "admit", key: "old", cost: 1, now: T0, rate: 1, burst: 2 },
      { op: "full" },
      { op: "spend", key: "new", cost: 1, now: T0, rate: 1 },
      { op: "admit", key: "old", cost: 1, now: T0, rate: 1, burst: 2 },
      { op: "admit", key: "old", cost: 1, now: T0, rate: 1, burst: 2 },
      { op: "raw", key: "new", now: T0 },
    ]);
    expect(out[2]).toEqual({ err: "dict_full" });
    expect(admits(out.slice(3, 5))).toEqual([true, false]);
    expect(out[5]).toEqual({});
  });

  it("counts another worker's spend when that worker creates the bucket first", async () => {
    // The other worker spent 4 at T0 (mark T0*rate + 4); this spend of 3 owes 7.
    const out = await scenario([{ op: "race", value: T0 * 1 + 4, ttl: 4 }, { op: "spend", cost: 3, now: T0, rate: 1 }, { op: "raw", now: T0 }]);
    expect(out[1]!.err).toBeUndefined();
    expect(out[1]!.debt).toBeCloseTo(7, 6);
    expect(out[2]!.v).toBeCloseTo(T0 + 7, 6);
  });

  it("waitFor is the debt above the burst over the rate, 0 within it", async () => {
    const table: [number, number, number, number][] = [
      [0, 10, 1, 0],
      [10, 10, 1, 0],
      [11, 10, 1, 1],
      [15, 10, 2, 2.5],
      [12, 10, 0.1, 20],
    ];
    const rs = await runLua("ratelimit.bucket", "waitFor", table.map(([d, b, r]) => [d, b, r]));
    table.forEach(([d, b, r, want], i) => expect(rs[i], `waitFor(${d}, ${b}, ${r})`).toEqual({ ok: true, values: [want] }));
  });

  it("a refused client is admitted a millisecond after waitFor, and refused a millisecond before", async () => {
    const seed = Date.now();
    const arb = fc.record({
      rate: fc.oneof(fc.constantFrom(0.1, 1, 2, 10, 100 / 60, 600 / 60, 5000 / 3600), fc.double({ min: 0.05, max: 500, noNaN: true })),
      burst: fc.integer({ min: 1, max: 200 }),
      costs: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 60 }),
      start: fc.integer({ min: 0, max: 86_400_000 }),
    });
    const plans = fc.sample(arb, { numRuns: 300, seed }).map((p) => {
      const costs = p.costs.filter((c) => c <= p.burst);
      return { ...p, costs: costs.length === 0 ? [1] : costs, now: 1764700000 + p.start / 1000 };
    });
    // Spend until a refusal, then retry the refused cost early (in a copy of the scenario) and late.
    const build = (p: (typeof plans)[number]): Step[] => {
      const steps: Step[] = [];
      // Every cost is at least 1 and the clock stands still: burst + 1 spends always reach a refusal.
      for (let i = 0; i <= p.burst; i++) steps.push({ op: "admit", cost: p.costs[i % p.costs.length]!, now: p.now, rate: p.rate, burst: p.burst });
      return steps;
    };
    const spent = await scenarios(plans.map((p) => build(p)));
    const retries: Step[][] = [];
    const refusedAt: number[] = [];
    plans.forEach((p, k) => {
      const i = spent[k]!.findIndex((o) => o.ok === false);
      expect(i, `seed ${seed}: ${JSON.stringify(p)} never refused`).toBeGreaterThanOrEqual(0);
      refusedAt.push(i);
      const upTo = build(p).slice(0, i + 1);
      const cost = p.costs[i % p.costs.length]!;
      const b = { cost, rate: p.rate, burst: p.burst };
      retries.push([...upTo, { op: "retry", delta: -0.001, ...b }]);
      retries.push([...upTo, { op: "retry", delta: 0.001, ...b }]);
    });
    const got = await scenarios(retries);
    plans.forEach((p, k) => {
      const i = refusedAt[k]!;
      const msg = `seed ${seed}: ${JSON.stringify(p)}, refused at step ${i}`;
      expect(i, msg).toBeGreaterThan(0);
      const wait = got[2 * k]![i]!.wait!;
      const early = got[2 * k]![i + 1]!;
      const late = got[2 * k + 1]![i + 1]!;
      // A wait under a millisecond has no "before" on nginx's clock.
      if (wait > 0.001) expect(early.ok, `${msg}: early, wait ${wait}`).toBe(false);
      expect(late.ok, `${msg}: late, wait ${wait}`).toBe(true);
    });
  });

  it("admits what a token bucket of the same rate and burst admits, over generated traffic", async () => {
    const seed = Date.now();
    const arb = fc.record({
      rate: fc.oneof(fc.constantFrom(1, 2, 10, 100 / 60), fc.double({ min: 0.1, max: 50, noNaN: true })),
      burst: fc.integer({ min: 1, max: 50 }),
      // Milliseconds between requests (nginx's clock), many at once, some after long pauses.
      traffic: fc.array(fc.tuple(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20_000 })), fc.integer({ min: 1, max: 10 })), { minLength: 1, maxLength: 80 }),
    });
    const plans = fc.sample(arb, { numRuns: 300, seed });
    const stepsOf = (p: (typeof plans)[number]): Step[] => {
      let ms = 0;
      return p.traffic.map(([dt, cost]) => {
        ms += dt;
        return { op: "admit", cost: Math.min(cost, p.burst), now: T0 + ms / 1000, rate: p.rate, burst: p.burst };
      });
    };
    const got = await scenarios(plans.map(stepsOf));
    plans.forEach((p, k) => {
      // The oracle: a bucket of tokens that refills continuously up to the burst.
      let tokens = p.burst;
      let last = 0;
      let ms = 0;
      p.traffic.forEach(([dt, raw], i) => {
        const cost = Math.min(raw, p.burst);
        ms += dt;
        tokens = Math.min(p.burst, tokens + ((ms - last) / 1000) * p.rate);
        last = ms;
        const ok = got[k]![i]!.ok;
        // A tie within a millisecond of refill (the key's extra millisecond of life, and float
        // rounding) may go either way; the oracle follows the bucket there.
        const margin = tokens - cost;
        if (Math.abs(margin) > p.rate * 0.002 + 1e-6) expect(ok, `seed ${seed}: ${JSON.stringify(p)} at request ${i}, oracle holds ${tokens}`).toBe(margin >= 0);
        if (ok === true) tokens -= cost;
      });
    });
  });

  // The mark is seconds x rate, a double: from the Unix epoch (1.8e9 s) at 1e7 tokens a second
  // it passed 2^53, where adding a cost of 1 is lost, and the bucket admitted everything. The
  // step now counts seconds from ratelimit/budgets ORIGIN (2025-06), and FE2605 caps a rate at
  // 1e6 a second: at that rate, in 2030 (1.43e8 s after the origin), the bucket still counts.
  it("still refuses past its burst at the highest rate a policy allows, on the step's clock in 2030", async () => {
    const in2030 = 1_893_456_000 - 1_750_000_000;
    const out = await scenario(times(12, () => ({ op: "admit", cost: 1, now: in2030, rate: 1e6, burst: 10 })));
    expect(admits(out)).toEqual([...times(10, () => true), false, false]);
  });
});
