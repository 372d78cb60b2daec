/**
 * Issue #13, `fhir-edge verify-audit` on real gateway output: a gateway with two workers writes
 * its trail to a file sink and its checkpoints to a second one; the export verifies clean, and
 * each tamper on a copy of it fails at the file and line where it shows:
 * a modified field, a deleted line, swapped batches, a truncated tail, a forged checkpoint, and
 * a chain recomputed after an edit (it holds by itself; the checkpoints it cannot forge do not).
 * The command is run as a user runs it (`main(["verify-audit", ...])`), so its exit code and
 * `file:line: kind:` output are what is checked.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../../compiler/cli/main.ts";
import { milliseconds, type PolicyInput } from "../../../policy-dsl/index.ts";
import { startRecorder, type Recorder } from "../../harness/recorder.ts";
import { startGateway, type OwnGateway } from "../../harness/gateway.ts";
import { lastSeals } from "../../harness/audit-sink.ts";

let origin: Recorder | undefined;
let gw: OwnGateway;
let work = "";
let keyFile = "";
/** The clean copies: the export's lines and the checkpoint sink's. */
let trail: string[] = [];
let checkpoints: string[] = [];

interface Line {
  readonly t?: string;
  readonly stream?: string;
  readonly seq?: number;
  readonly kind?: string;
  readonly n?: number;
  readonly [k: string]: unknown;
}
const parse = (l: string): Line => JSON.parse(l) as Line;
const isSeal = (l: string): boolean => l.startsWith('{"t":"seal"');

async function verify(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["verify-audit", ...args], (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

/** Writes a tampered copy (trail lines, checkpoint lines) and verifies it; the findings as `file:line: kind`. */
async function verifyCopy(name: string, trailLines: string[], cpLines: string[] = checkpoints, tail = "\n"): Promise<{ code: number; findings: string[]; out: string[] }> {
  const dir = path.join(work, name);
  const t = path.join(dir, "trail");
  const c = path.join(dir, "checkpoints");
  cpSync(path.join(work, "clean"), dir, { recursive: true });
  writeFileSync(path.join(t, "audit.jsonl"), trailLines.join("\n") + tail);
  writeFileSync(path.join(c, "audit.jsonl"), cpLines.join("\n") + "\n");
  const r = await verify(t, "--key", keyFile, "--checkpoints", c);
  const findings = r.out.filter((l) => /^\/.*:\d+: [a-z-]+:/.test(l)).map((l) => /^(.*:\d+: [a-z-]+):/.exec(l)![1]!.replace(dir + "/", ""));
  return { code: r.code, findings, out: r.out };
}

/** Index (0-based) of the first seal at or after `i`. */
const sealAfter = (lines: readonly string[], i: number): number => lines.findIndex((l, j) => j >= i && isSeal(l));

/** The lines of the batch closed by the seal at index `s`: [first event index, s]. */
function batchAt(lines: readonly string[], s: number): [number, number] {
  let a = s;
  // Batches are contiguous: the line before a batch is a seal or a checkpoint.
  while (a > 0 && !lines[a - 1]!.startsWith('{"t":')) a--;
  return [a, s];
}

beforeAll(async () => {
  origin = await startRecorder(() => undefined);
  const originUrl = origin.url;
  work = mkdtempSync(path.join(tmpdir(), "fe-verify-audit-"));
  keyFile = path.join(work, "audit.key");
  writeFileSync(keyFile, randomBytes(32));
  const policy: PolicyInput = {
    name: "audit-verify",
    audit: {
      keyFile,
      flushEvery: milliseconds(20),
      batchEvents: 4,
      checkpointEvery: 3,
      sinks: [
        { id: "trail", kind: "file" },
        { id: "checkpoints", kind: "file", records: "checkpoints" },
      ],
    },
    tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: `${originUrl}/acme` }, anonymous: true }],
  };
  gw = await startGateway(policy, { workers: 2 });
  // Enough batches of both workers, with refusals among them.
  for (let round = 0; round < 8; round++) {
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const r = await fetch(`${gw.url}/${i === 5 ? "nobody" : "acme"}/fhir/Observation?code=${round}-${i}`, { headers: { "X-Request-ID": `va-${round}-${i}` } });
        await r.text();
      }),
    );
    await new Promise((r) => setTimeout(r, 40));
  }
  // Until the export has every seal the spool has, and the checkpoint sink every checkpoint.
  const spool = path.join(gw.stateDir, "audit", "spool");
  const exportDir = path.join(gw.stateDir, "audit", "trail");
  const cpDir = path.join(gw.stateDir, "audit", "checkpoints");
  const read = (f: string): string => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      return "";
    }
  };
  const t0 = Date.now();
  for (;;) {
    const want = lastSeals(spool);
    const have = new Map<string, number>();
    for (const l of read(path.join(exportDir, "audit.jsonl")).split("\n")) if (isSeal(l)) have.set(parse(l).stream!, parse(l).seq!);
    const spooled = readdirSync(spool).filter((f) => f.endsWith(".jsonl")).flatMap((f) => read(path.join(spool, f)).split("\n")).filter((l) => l.startsWith('{"t":"checkpoint"')).length;
    const signed = read(path.join(cpDir, "audit.jsonl")).split("\n").filter((l) => l !== "").length;
    if (want.size === 2 && [...want].every(([s, q]) => have.get(s) === q) && spooled > 0 && signed === spooled) break;
    if (Date.now() - t0 > 10_000) throw new Error(`the file sinks did not catch up: ${JSON.stringify([...want])} vs ${JSON.stringify([...have])}, ${signed} of ${spooled} checkpoints`);
    await new Promise((r) => setTimeout(r, 100));
  }
  cpSync(exportDir, path.join(work, "clean", "trail"), { recursive: true });
  cpSync(cpDir, path.join(work, "clean", "checkpoints"), { recursive: true });
  trail = readFileSync(path.join(work, "clean", "trail", "audit.jsonl"), "utf8").split("\n").slice(0, -1);
  checkpoints = readFileSync(path.join(work, "clean", "checkpoints", "audit.jsonl"), "utf8").split("\n").slice(0, -1);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await origin?.close();
  if (work !== "") rmSync(work, { recursive: true, force: true });
});

describe("verify-audit", () => {
  it("passes on the gateway's clean output: the export, and the state dir's spool and sinks", async () => {
    const seals = trail.filter(isSeal).map(parse);
    expect(new Set(seals.map((s) => s.stream)).size).toBe(2);
    expect(seals.filter((s) => s.kind === "batch").length).toBeGreaterThanOrEqual(8);
    expect(checkpoints.length).toBeGreaterThanOrEqual(4);
    const clean = await verifyCopy("clean-copy", trail);
    expect(clean.findings).toEqual([]);
    expect(clean.code).toBe(0);
    expect(clean.out.at(-1)).toMatch(/^ok: 0 finding\(s\), [1-9]\d* checkpoint MAC\(s\) checked/);
    const state = await verify("--state", gw.stateDir);
    expect(state.out.filter((l) => l.includes(": ") && /:\d+: /.test(l))).toEqual([]);
    expect(state.code).toBe(0);
    expect(state.out.join("\n")).toMatch(/^spool .*audit\/spool: 2 stream/m);
    expect(state.out.join("\n")).toMatch(/^export .*audit\/trail: 2 stream/m);
  });

  it("a modified field fails at the seal of its batch, naming the batch's lines", async () => {
    const i = trail.findIndex((l, j) => j > trail.length / 2 && !l.startsWith('{"t":') && l.includes('"status":200'));
    expect(i).toBeGreaterThan(0);
    const lines = [...trail];
    lines[i] = lines[i]!.replace('"status":200', '"status":201');
    const s = sealAfter(lines, i);
    const r = await verifyCopy("modified", lines);
    expect(r.findings).toEqual([`trail/audit.jsonl:${s + 1}: modified`]);
    expect(r.code).toBe(1);
    const [a] = batchAt(lines, s);
    expect(r.out.join("\n")).toContain(`(lines ${a + 1}-${s})`);
  });

  it("a deleted event line fails at the seal that closed it", async () => {
    const i = trail.findIndex((l, j) => j > trail.length / 3 && !l.startsWith('{"t":'));
    const s = sealAfter(trail, i);
    const lines = trail.filter((_, j) => j !== i);
    const r = await verifyCopy("deleted", lines);
    expect(r.findings).toEqual([`trail/audit.jsonl:${s}: missing`]);
    expect(r.code).toBe(1);
  });

  it("a deleted seal fails where its stream's seals skip it", async () => {
    const s = trail.findIndex((l, j) => j > trail.length / 3 && isSeal(l) && parse(l).kind === "batch");
    const { stream, seq } = parse(trail[s]!);
    const next = trail.findIndex((l, j) => j > s && isSeal(l) && parse(l).stream === stream);
    const lines = trail.filter((_, j) => j !== s);
    const r = await verifyCopy("deleted-seal", lines);
    // Its events are left closed by no seal, and the next seal of its stream skips its seq.
    expect(r.findings).toContain(`trail/audit.jsonl:${next}: missing`);
    expect(r.out.join("\n")).toContain(`seals ${seq!} of stream ${stream!} are missing`);
    expect(r.code).toBe(1);
  });

  it("swapped batches fail where the later one comes first", async () => {
    const s1 = trail.findIndex((l, j) => j > trail.length / 3 && isSeal(l) && parse(l).kind === "batch");
    const { stream, seq } = parse(trail[s1]!);
    const s2 = trail.findIndex((l) => isSeal(l) && parse(l).stream === stream && parse(l).seq === seq! + 1);
    expect(parse(trail[s2]!).kind).toBe("batch");
    const [a1] = batchAt(trail, s1);
    const [a2] = batchAt(trail, s2);
    const lines = [...trail.slice(0, a1), ...trail.slice(a2, s2 + 1), ...trail.slice(s1 + 1, a2), ...trail.slice(a1, s1 + 1), ...trail.slice(s2 + 1)];
    expect(lines).toHaveLength(trail.length);
    const moved = lines.indexOf(trail[s1]!);
    const r = await verifyCopy("swapped", lines);
    expect(r.findings).toEqual([`trail/audit.jsonl:${moved + 1}: reordered`]);
    expect(r.code).toBe(1);
  });

  it("a truncated tail fails at the cut line", async () => {
    const last = trail.at(-1)!;
    const lines = [...trail.slice(0, -1), last.slice(0, Math.floor(last.length / 2))];
    const r = await verifyCopy("truncated", lines, checkpoints, "");
    expect(r.findings[0]).toBe(`trail/audit.jsonl:${lines.length}: truncated`);
    expect(r.findings.every((f) => f.endsWith(": truncated"))).toBe(true);
    expect(r.code).toBe(1);
  });

  it("a forged checkpoint fails at its line in the checkpoint sink", async () => {
    const j = Math.floor(checkpoints.length / 2);
    const cp = parse(checkpoints[j]!) as Line & { stream: string; seq: number; hash: string; ts: number };
    const wrongKey = randomBytes(32);
    const hash = createHash("sha256").update("something else").digest("hex");
    const mac = createHmac("sha256", wrongKey).update(`fhir-edge-audit-checkpoint/1\n${cp.stream}\n${cp.seq}\n${hash}\n${cp.ts}`).digest("hex");
    const cps = [...checkpoints];
    cps[j] = JSON.stringify({ ...cp, hash, mac });
    const r = await verifyCopy("forged", trail, cps);
    expect(r.findings).toEqual([`checkpoints/audit.jsonl:${j + 1}: forged-checkpoint`]);
    expect(r.code).toBe(1);
  });

  it("a chain recomputed after an edit holds by itself, but not against the key or the checkpoint sink", async () => {
    // Whoever can rewrite the export but has no key: change an event, recompute every later
    // seal of its stream (hash and prev) as the README defines them, and put the new hashes
    // in the export's own checkpoints (their MACs cannot be redone).
    const i = trail.findIndex((l, j) => j > trail.length / 3 && !l.startsWith('{"t":') && l.includes('"status":200'));
    const lines = [...trail];
    lines[i] = lines[i]!.replace('"status":200', '"status":204');
    const first = sealAfter(lines, i);
    const stream = parse(lines[first]!).stream!;
    const firstSeq = parse(lines[first]!).seq!;
    const rehashed = new Map<number, string>();
    let prev: string | undefined;
    for (let s = first; s < lines.length; s++) {
      const rec = parse(lines[s]!);
      if (rec.stream !== stream) continue;
      if (rec.t === "checkpoint") {
        const h = rehashed.get(rec.seq!);
        if (h !== undefined) lines[s] = JSON.stringify({ ...rec, hash: h });
        continue;
      }
      if (rec.t !== "seal") continue;
      const seal = rec as Line & { prev: string; seq: number; ts: number; n: number; dropped: number; kind: string };
      const [a] = batchAt(lines, s);
      const h = createHash("sha256").update(`${prev ?? seal.prev}\n${stream}\n${seal.seq}\n${seal.kind}\n${seal.ts}\n${seal.n}\n${seal.dropped}\n`);
      for (const e of lines.slice(a, s)) h.update(e + "\n");
      const hash = h.digest("hex");
      lines[s] = JSON.stringify({ ...seal, prev: prev ?? seal.prev, hash });
      rehashed.set(seal.seq, hash);
      prev = hash;
    }
    const signed = checkpoints.map(parse).filter((c) => c.stream === stream && c.seq! >= firstSeq);
    expect(signed.length).toBeGreaterThan(0);
    // The export alone, without the key: nothing shows.
    const dir = path.join(work, "recomputed-alone");
    cpSync(path.join(work, "clean", "trail"), dir, { recursive: true });
    writeFileSync(path.join(dir, "audit.jsonl"), lines.join("\n") + "\n");
    const alone = await verify(dir);
    expect(alone.out.at(-1)).toMatch(/^ok: 0 finding/);
    expect(alone.code).toBe(0);
    // With the key, each rewritten checkpoint is forged; against the checkpoint sink, each
    // signed seal from the edit on disagrees, at the seal's line.
    const r = await verifyCopy("recomputed", lines);
    expect(r.code).toBe(1);
    const sealLine = (seq: number): number => lines.findIndex((l) => isSeal(l) && parse(l).stream === stream && parse(l).seq === seq) + 1;
    const cpLine = (seq: number): number => lines.findIndex((l) => l.startsWith('{"t":"checkpoint"') && parse(l).stream === stream && parse(l).seq === seq) + 1;
    expect(r.findings.filter((f) => f.endsWith(": modified")).sort()).toEqual(signed.map((c) => `trail/audit.jsonl:${sealLine(c.seq!)}: modified`).sort());
    expect(r.findings.filter((f) => f.endsWith(": forged-checkpoint")).sort()).toEqual(signed.map((c) => `trail/audit.jsonl:${cpLine(c.seq!)}: forged-checkpoint`).sort());
    expect(r.findings).toHaveLength(2 * signed.length);
  });

  it("usage errors exit 2", async () => {
    expect((await verify(path.join(work, "no-such-dir"))).code).toBe(2);
    expect((await verify("--state", path.join(work, "clean"))).code).toBe(2);
  });
});

/**
 * Ed25519 checkpoints (`ed25519KeyFile`): the same gateway output, signed with a private key,
 * verifies with the public key alone; a checkpoint signed with another key, or under an
 * algorithm the gateway does not write, is forged; and a key file that is not an Ed25519 PEM
 * stops the gateway from starting.
 */
describe("verify-audit with Ed25519 checkpoints", () => {
  let edGw: OwnGateway | undefined;
  let dir = "";
  let pubFile = "";
  let cps: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "fe-verify-ed25519-"));
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const privFile = path.join(dir, "audit-ed25519.pem");
    writeFileSync(privFile, privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    pubFile = path.join(dir, "audit-ed25519.pub.pem");
    writeFileSync(pubFile, publicKey.export({ format: "pem", type: "spki" }));
    const hmacKey = path.join(dir, "audit.key");
    writeFileSync(hmacKey, randomBytes(32));
    edGw = await startGateway({
      name: "audit-verify-ed25519",
      audit: { keyFile: hmacKey, ed25519KeyFile: privFile, keyId: "ed-1", flushEvery: milliseconds(20), batchEvents: 4, checkpointEvery: 2, sinks: [{ id: "checkpoints", kind: "file", records: "checkpoints" }] },
      tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: `${origin!.url}/acme` }, anonymous: true }],
    });
    for (let i = 0; i < 24; i++) await (await fetch(`${edGw.url}/acme/fhir/Observation?code=${i}`)).text();
    const cpFile = path.join(edGw.stateDir, "audit", "checkpoints", "audit.jsonl");
    for (const t0 = Date.now(); Date.now() - t0 < 10_000; await new Promise((r) => setTimeout(r, 100))) {
      try {
        cps = readFileSync(cpFile, "utf8").split("\n").filter((l) => l !== "");
      } catch {
        cps = [];
      }
      if (cps.length >= 3) break;
    }
  }, 60_000);

  afterAll(async () => {
    await edGw?.stop();
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("signs each checkpoint, and the state dir and the public key alone verify them", async () => {
    expect(cps.length).toBeGreaterThanOrEqual(3);
    for (const l of cps) expect(parse(l)).toMatchObject({ t: "checkpoint", alg: "Ed25519", key_id: "ed-1", sig: expect.stringMatching(/^[0-9a-f]{128}$/) });
    const state = await verify("--state", edGw!.stateDir);
    expect(state.code).toBe(0);
    expect(state.out.at(-1)).toMatch(new RegExp(`^ok: 0 finding\\(s\\), [1-9]\\d* checkpoint MAC\\(s\\) checked with .*audit.key and the public key of .*audit-ed25519.pem$`));
    // An auditor with the spool and the public key only.
    const spool = path.join(edGw!.stateDir, "audit", "spool");
    const pub = await verify(spool, "--public-key", pubFile, "--checkpoints", path.join(edGw!.stateDir, "audit", "checkpoints"));
    expect(pub.out.filter((l) => /:\d+: [a-z-]+:/.test(l))).toEqual([]);
    expect(pub.out.at(-1)).toMatch(/^ok: 0 finding\(s\), [1-9]\d* checkpoint MAC\(s\) checked with the public key of /);
    // Without it, nothing says the signatures hold.
    const none = await verify(spool);
    expect(none.err.join("\n")).toContain("Ed25519 checkpoint signatures were not checked: no public key (--public-key FILE)");
    // A key of another kind is a usage error.
    const rsa = path.join(dir, "rsa.pem");
    writeFileSync(rsa, generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "pem", type: "spki" }));
    expect((await verify(spool, "--public-key", rsa)).code).toBe(2);
  });

  it("finds a checkpoint signed with another key, and one under another algorithm, at their lines", async () => {
    const copy = path.join(dir, "forged");
    cpSync(path.join(edGw!.stateDir, "audit", "checkpoints"), copy, { recursive: true });
    const lines = [...cps];
    const other = generateKeyPairSync("ed25519").privateKey;
    const a = 1;
    const b = lines.length - 1;
    const ca = parse(lines[a]!) as Line & { stream: string; seq: number; hash: string; ts: number };
    const text = `fhir-edge-audit-checkpoint/1\n${ca.stream}\n${ca.seq}\n${ca.hash}\n${ca.ts}`;
    lines[a] = JSON.stringify({ ...ca, sig: sign(null, Buffer.from(text), other).toString("hex") });
    const cb = parse(lines[b]!);
    const { sig: _dropped, ...rest } = cb;
    lines[b] = JSON.stringify({ ...rest, alg: "none", mac: "" });
    writeFileSync(path.join(copy, "audit.jsonl"), lines.join("\n") + "\n");
    const r = await verify(path.join(edGw!.stateDir, "audit", "spool"), "--public-key", pubFile, "--checkpoints", copy);
    const found = r.out.filter((l) => /:\d+: [a-z-]+:/.test(l)).map((l) => /^(.*:\d+: [a-z-]+):/.exec(l)![1]!.replace(copy + "/", ""));
    expect(found).toEqual([`audit.jsonl:${a + 1}: forged-checkpoint`, `audit.jsonl:${b + 1}: forged-checkpoint`]);
    expect(r.out.join("\n")).toContain("its signature is not the public key's (key_id ed-1)");
    expect(r.out.join("\n")).toContain('its algorithm "none" is not one the gateway writes');
    expect(r.code).toBe(1);
  });

  it("refuses to start with a key file that is not an Ed25519 private key", async () => {
    const ec = path.join(dir, "ec.pem");
    writeFileSync(ec, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }));
    const hmacKey = path.join(dir, "audit.key");
    await expect(
      startGateway({ name: "audit-bad-ed25519", audit: { keyFile: hmacKey, ed25519KeyFile: ec }, tenants: [{ id: "acme", pathPrefix: "/acme", upstream: { url: `${origin!.url}/acme` }, anonymous: true }] }),
    ).rejects.toThrow(/ed25519KeyFile .*ec\.pem is not an Ed25519 private key/);
  });
});
