import { describe, expect, it } from "vitest";
import { kilobytes, megabytes, milliseconds, seconds } from "../../../policy-dsl/index.ts";
import { parseDuration, parseSize } from "../../../policy-dsl/units.ts";

describe("policy units", () => {
  it("builds durations and sizes as values", () => {
    expect(seconds(2)).toEqual({ ms: 2000 });
    expect(milliseconds(250)).toEqual({ ms: 250 });
    expect(kilobytes(8)).toEqual({ bytes: 8192 });
    expect(megabytes(16)).toEqual({ bytes: 16 * 1024 * 1024 });
  });

  it("parses the YAML spellings", () => {
    expect(parseDuration("2s")).toEqual({ ms: 2000 });
    expect(parseDuration("250ms")).toEqual({ ms: 250 });
    expect(parseDuration("1.5m")).toEqual({ ms: 90_000 });
    expect(parseDuration(1500)).toEqual({ ms: 1500 });
    expect(parseDuration("2 sec")).toBeUndefined();
    expect(parseSize("16MB")).toEqual({ bytes: 16 * 1024 * 1024 });
    expect(parseSize(1024)).toEqual({ bytes: 1024 });
    expect(parseSize("16mb")).toBeUndefined();
  });
});
