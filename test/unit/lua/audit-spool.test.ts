/**
 * audit/spool under LuaJIT (the compiled module, with plain LuaJIT's libc and libcrypto): a
 * stream written to a temp dir is checked here against the README's format, with an oracle
 * written from the README alone (SHA-256 of the seal's head and the batch's lines, HMAC-SHA256
 * of the checkpoint text): the chain links, every hash recomputes, every MAC verifies, the
 * segments roll at their size and continue the chain, and a gap seal counts what it lost.
 */
import { createHash, createHmac, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runLua } from "../../harness/luajit.ts";

const dir = mkdtempSync(path.join(tmpdir(), "fe-spool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY = "k".repeat(32);

const WRITE = String.raw`function(dir, key, batches, segmentBytes, every)
  local cfg = { dir = dir, segmentBytes = segmentBytes, checkpointEvery = every, checkpointMs = 3600000, key = key, keyId = "k1" }
  local s = m.openStream(cfg, 3, 4242, 1700000000000, "abc123abc123")
  local ts = 1700000000000
  for i = 1, #batches do
    ts = ts + 10
    local b = batches[i]
    if b.gap then
      m.seal(s, "gap", {}, 1, 0, ts, b.gap, ',"reason":"buffer-full"', false)
    else
      m.seal(s, "batch", b.lines, 1, #b.lines, ts, 0, "", false)
    end
  end
  m.closeStream(s, ts + 10)
  return s.id
end`;

interface Rec {
  t?: string;
  [k: string]: unknown;
}

function oracleHash(prev: string, stream: string, seq: number, kind: string, ts: number, n: number, dropped: number, lines: string[]): string {
  const h = createHash("sha256");
  h.update(`${prev}\n${stream}\n${seq}\n${kind}\n${ts}\n${n}\n${dropped}\n`);
  for (const l of lines) h.update(`${l}\n`);
  return h.digest("hex");
}

function event(i: number): string {
  return JSON.stringify({ v: 1, ts: 1700000000000 + i, tenant: "acme", method: "GET", decision: "allow", policy: "abc123abc123", status: 200, latency_ms: 0.5, note: `e${i} "quoted" \\ back` });
}

describe("audit spool stream", () => {
  it("writes a chain the README's definition verifies, across segments, with gaps and checkpoints", async () => {
    const batches: ({ lines: string[] } | { gap: number })[] = [];
    let e = 0;
    for (let b = 0; b < 40; b++) {
      if (b === 17) batches.push({ gap: 5 });
      const n = 1 + (b % 7);
      batches.push({ lines: Array.from({ length: n }, () => event(e++)) });
    }
    const [r] = await runLua("audit.spool", WRITE, [[dir, KEY, batches, 4096, 8]]);
    expect(r!.ok, r!.ok ? "" : r!.error).toBe(true);
    const stream = (r as { values: unknown[] }).values[0] as string;
    expect(stream).toMatch(/^w3-1700000000000-4242$/);

    const files = readdirSync(dir).filter((f) => f.startsWith(stream)).sort();
    expect(files.length).toBeGreaterThan(3);
    expect(files[0]).toBe(`${stream}.000000.jsonl`);
    let prev = "";
    let seq = -1;
    let pending: string[] = [];
    let events = 0;
    let checkpoints = 0;
    const kinds: string[] = [];
    for (const f of files) {
      const text = readFileSync(path.join(dir, f), "utf8");
      expect(text.endsWith("\n")).toBe(true);
      for (const line of text.slice(0, -1).split("\n")) {
        const rec = JSON.parse(line) as Rec;
        if (rec.t === undefined) {
          pending.push(line);
          continue;
        }
        if (rec.t === "checkpoint") {
          checkpoints += 1;
          expect(rec["seq"]).toBe(seq);
          expect(rec["hash"]).toBe(prev);
          const mac = createHmac("sha256", KEY).update(`fhir-edge-audit-checkpoint/1\n${stream}\n${seq}\n${prev}\n${rec["ts"] as number}`).digest("hex");
          expect(rec["mac"]).toBe(mac);
          expect(rec).toMatchObject({ key_id: "k1", alg: "HMAC-SHA256", stream });
          continue;
        }
        expect(rec.t).toBe("seal");
        expect(rec["seq"]).toBe(seq + 1);
        expect(rec["prev"]).toBe(prev);
        expect(rec["n"]).toBe(pending.length);
        const h = oracleHash(prev, stream, rec["seq"] as number, rec["kind"] as string, rec["ts"] as number, rec["n"] as number, rec["dropped"] as number, pending);
        expect(rec["hash"]).toBe(h);
        kinds.push(rec["kind"] as string);
        events += pending.length;
        pending = [];
        prev = h;
        seq += 1;
      }
    }
    expect(pending).toEqual([]);
    expect(events).toBe(e);
    expect(kinds[0]).toBe("open");
    expect(kinds.at(-1)).toBe("close");
    expect(kinds.filter((k) => k === "gap")).toHaveLength(1);
    // Every 8 seals, and at close.
    expect(checkpoints).toBe(Math.floor(seq / 8) + (seq % 8 === 0 ? 0 : 1));
  });

  it("signs checkpoints with an Ed25519 key instead of the HMAC, and the public key alone verifies them", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const SIGNED = String.raw`function(dir, key, pem, n)
      local crypto = require("auth.crypto")
      local signer = crypto.ed25519PrivateKey(pem)
      if signer == nil then error("key did not load") end
      local s = m.openStream({ dir = dir, segmentBytes = 1048576, checkpointEvery = 2, checkpointMs = 3600000, key = key, keyId = "ed1", signer = signer }, 1, 77, 1700000000000, "abc123abc123")
      for i = 1, n do m.seal(s, "batch", { '{"v":1,"i":' .. i .. '}' }, 1, 1, 1700000000000 + i, 0, "", false) end
      m.closeStream(s, 1700000000100)
      return s.id
    end`;
    const d = mkdtempSync(path.join(dir, "ed-"));
    const [r] = await runLua("audit.spool", SIGNED, [[d, KEY, pem, 5]]);
    expect(r!.ok, r!.ok ? "" : r!.error).toBe(true);
    const stream = (r as { values: unknown[] }).values[0] as string;
    const checkpoints = readdirSync(d)
      .flatMap((f) => readFileSync(path.join(d, f), "utf8").split("\n"))
      .filter((l) => l.startsWith('{"t":"checkpoint"'))
      .map((l) => JSON.parse(l) as Rec);
    expect(checkpoints.length).toBeGreaterThanOrEqual(3);
    const other = generateKeyPairSync("ed25519").publicKey;
    for (const c of checkpoints) {
      expect(c).toMatchObject({ key_id: "ed1", alg: "Ed25519", stream });
      expect(c["mac"]).toBeUndefined();
      const text = Buffer.from(`fhir-edge-audit-checkpoint/1\n${stream}\n${c["seq"] as number}\n${c["hash"] as string}\n${c["ts"] as number}`);
      const sig = Buffer.from(c["sig"] as string, "hex");
      expect(sig).toHaveLength(64);
      expect(verify(null, text, createPublicKey(publicKey.export({ format: "pem", type: "spki" })), sig)).toBe(true);
      expect(verify(null, text, other, sig)).toBe(false);
    }
  });

  it("loads only an Ed25519 PKCS#8 PEM as a signing key", async () => {
    const ed = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const x448 = generateKeyPairSync("ed448").privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const pub = generateKeyPairSync("ed25519").publicKey.export({ format: "pem", type: "spki" }) as string;
    const LOAD = "function(pem) return require('auth.crypto').ed25519PrivateKey(pem) ~= nil end";
    const rs = await runLua("audit.spool", LOAD, [[ed], [ec], [x448], [pub], ["not a key"], [ed.replace(/[A-Za-z](?=[^-]*-----END)/, "!")]]);
    expect(rs.map((r) => (r.ok ? r.values[0] : r.error))).toEqual([true, false, false, false, false, false]);
  });

  it("a stream is a hash chain: the same events in another order seal differently", async () => {
    const a = { lines: [event(1), event(2)] };
    const b = { lines: [event(2), event(1)] };
    const sub = (n: string): string => mkdtempSync(path.join(dir, n));
    const [ra, rb] = await runLua("audit.spool", WRITE, [
      [sub("a"), KEY, [a], 1 << 20, 100],
      [sub("b"), KEY, [b], 1 << 20, 100],
    ]);
    expect(ra!.ok && rb!.ok).toBe(true);
    const sealOf = (d: string): string => {
      const f = readdirSync(d).find((x) => x.endsWith(".jsonl"))!;
      return readFileSync(path.join(d, f), "utf8").split("\n").filter((l) => l.includes('"kind":"batch"'))[0]!;
    };
    const dirs = readdirSync(dir).filter((x) => x.startsWith("a") || x.startsWith("b")).map((x) => path.join(dir, x)).sort();
    const [sa, sb] = dirs.map(sealOf);
    expect((JSON.parse(sa!) as Rec)["hash"]).not.toBe((JSON.parse(sb!) as Rec)["hash"]);
  });
});
