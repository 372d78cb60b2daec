/**
 * The conf's request id and traceparent maps (compiler/emit/gateway-conf traceMaps), run by a real
 * nginx: what it computes from the client's headers, against independent oracles written from
 * the rules (X-Request-ID: 8-128 of [A-Za-z0-9._:-]; W3C trace context level 1, version 00).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findRuntime } from "../../../compiler/runtime.ts";
import { traceMaps } from "../../../compiler/emit/gateway-conf.ts";
import { block, d, printConf } from "../../../nginx/model.ts";
import { freePort } from "../../harness/ports.ts";

const runtime = findRuntime();
let dir = "";
let base = "";
let nginx: ChildProcess | undefined;

beforeAll(async () => {
  if (!existsSync(runtime.nginx)) return;
  dir = mkdtempSync(path.join(tmpdir(), "fhir-edge-maps-"));
  for (const t of ["cb", "px", "fc", "uw", "sc"]) mkdirSync(path.join(dir, t));
  const port = await freePort();
  const conf = printConf([
    d("pid", `${dir}/nginx.pid`),
    d("error_log", `${dir}/error.log`, "warn"),
    block("events", [], []),
    block("http", [], [
      d("access_log", "off"),
      ...["client_body:cb", "proxy:px", "fastcgi:fc", "uwsgi:uw", "scgi:sc"].map((x) => d(`${x.split(":")[0]!}_temp_path`, `${dir}/${x.split(":")[1]!}`)),
      ...traceMaps(),
      block("server", [], [d("listen", `127.0.0.1:${port}`), block("location", ["/"], [d("return", 200, "$request_id $fe_request_id $fe_traceparent")])]),
    ]),
  ]);
  writeFileSync(path.join(dir, "nginx.conf"), conf);
  nginx = spawn(runtime.nginx, ["-p", `${dir}/`, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log"), "-g", "daemon off;"], { stdio: "ignore" });
  base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(base);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
});

afterAll(() => {
  nginx?.kill("SIGQUIT");
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

async function ask(headers: Record<string, string>): Promise<{ nginxId: string; requestId: string; traceparent: string }> {
  const [nginxId, requestId, traceparent] = (await (await fetch(base, { headers })).text()).split(" ");
  return { nginxId: nginxId!, requestId: requestId!, traceparent: traceparent! };
}

describe.skipIf(!existsSync(runtime.nginx))("request id and traceparent maps", () => {
  it("keep a client X-Request-ID only when it is 8-128 of [A-Za-z0-9._:-] (property, against a regex oracle)", async () => {
    // Characters a client can send in a header value (fetch refuses CR, LF and NUL).
    const unit = fc.constantFrom("a", "Z", "7", ".", "_", ":", "-", " ", "\t", '"', ";", "é", "/", "=", "%", "{", "$");
    const ids = [...fc.sample(fc.string({ unit, minLength: 1, maxLength: 140 }), 300), "a".repeat(7), "a".repeat(8), "a".repeat(128), "a".repeat(129)];
    for (const raw of ids) {
      // nginx and fetch drop leading and trailing blanks of a header value.
      const sent = raw.replace(/^[ \t]+|[ \t]+$/g, "");
      if (sent === "") continue;
      const r = await ask({ "X-Request-ID": raw });
      const want = sent.length >= 8 && sent.length <= 128 && [...sent].every((ch) => /[A-Za-z0-9._:-]/.test(ch));
      expect(r.requestId, JSON.stringify(raw)).toBe(want ? sent : r.nginxId);
    }
    expect((await ask({})).requestId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("continue a valid client trace with the gateway's span as parent, and start a new trace otherwise", async () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const cases: [string | undefined, "keep" | "new", string?][] = [
      [`00-${trace}-00f067aa0ba902b7-01`, "keep", "01"],
      [`00-${trace}-00f067aa0ba902b7-00`, "keep", "00"],
      [undefined, "new"],
      [`00-${"0".repeat(32)}-00f067aa0ba902b7-01`, "new"],
      [`00-${trace}-${"0".repeat(16)}-01`, "new"],
      [`ff-${trace}-00f067aa0ba902b7-01`, "new"],
      [`00-${trace.toUpperCase()}-00f067aa0ba902b7-01`, "new"],
      [`00-${trace}-00F067AA0BA902B7-01`, "new"],
      [`00-${trace}-00f067aa0ba902b7-01-extra`, "new"],
      [`00-${trace}-00f067aa0ba902b7-1`, "new"],
      [`00-${trace}0-00f067aa0ba902b7-01`, "new"],
    ];
    for (const [tp, kind, flags] of cases) {
      const r = await ask(tp === undefined ? {} : { traceparent: tp });
      const span = r.nginxId.slice(0, 16);
      expect(r.traceparent, String(tp)).toBe(kind === "keep" ? `00-${trace}-${span}-${flags!}` : `00-${r.nginxId}-${span}-01`);
    }
  });
});
