/**
 * Fails any integration test whose run added an `[error]`, `[crit]`, `[alert]` or `[emerg]`
 * line to nginx's error.log that the test did not declare with `expectErrorLog(/pattern/)`.
 * Integration files run one at a time (vitest.config.ts), so the log delta is the test's own.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { afterEach, beforeEach, expect } from "vitest";
import { stack } from "./env.ts";

let offset = 0;
let allowed: RegExp[] = [];

/** Declare an error.log line this test causes on purpose. */
export function expectErrorLog(pattern: RegExp): void {
  allowed.push(pattern);
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export function readFrom(file: string, from: number): string {
  const end = size(file);
  if (end <= from) return "";
  const buf = Buffer.alloc(end - from);
  const fd = openSync(file, "r");
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  return buf.toString("utf8");
}

const SERIOUS = /\[(error|crit|alert|emerg)\]/;

beforeEach(() => {
  allowed = [];
  offset = size(stack().errorLog);
});

afterEach(async () => {
  // Log-phase lines land after the response; give the worker a moment to write them.
  await new Promise((r) => setTimeout(r, 30));
  const added = readFrom(stack().errorLog, offset)
    .split("\n")
    .filter((l) => SERIOUS.test(l) && !allowed.some((re) => re.test(l)));
  expect(added, "unexpected [error]/[alert] lines in nginx error.log").toEqual([]);
});
