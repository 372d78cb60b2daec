/**
 * Units as values, so `readTimeout: 30` (seconds? ms?) cannot be written by mistake.
 * The brand keeps a plain `{ ms: 5 }` literal from passing as a duration.
 */
declare const unitBrand: unique symbol;

/** A span of time. Build it with {@link seconds} or {@link milliseconds}. */
export interface Duration {
  readonly ms: number;
  readonly [unitBrand]?: "duration";
}

/** An amount of bytes. Build it with {@link kilobytes} or {@link megabytes}. */
export interface Size {
  readonly bytes: number;
  readonly [unitBrand]?: "size";
}

export function milliseconds(n: number): Duration {
  return { ms: n };
}

export function seconds(n: number): Duration {
  return { ms: Math.round(n * 1000) };
}

/** 1 KB = 1024 bytes, as nginx counts `k`. */
export function kilobytes(n: number): Size {
  return { bytes: Math.round(n * 1024) };
}

/** 1 MB = 1024 * 1024 bytes, as nginx counts `m`. */
export function megabytes(n: number): Size {
  return { bytes: Math.round(n * 1024 * 1024) };
}

/**
 * The YAML spelling of a duration: a number is milliseconds; a string is a number followed by
 * `ms`, `s` or `m` (`"250ms"`, `"2s"`, `"1.5m"`). Returns undefined for anything else.
 */
export function parseDuration(v: number | string): Duration | undefined {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? milliseconds(v) : undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$/.exec(v.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const factor = m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000;
  return milliseconds(Math.round(n * factor));
}

/**
 * The YAML spelling of a size: a number is bytes; a string is an integer followed by `B`, `KB`,
 * `MB` or `GB`, 1024-based like nginx (`"16MB"`). Returns undefined for anything else.
 */
export function parseSize(v: number | string): Size | undefined {
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? { bytes: v } : undefined;
  const m = /^([0-9]+)(B|KB|MB|GB)$/.exec(v.trim());
  if (m === null) return undefined;
  const shift = { B: 0, KB: 10, MB: 20, GB: 30 }[m[2] as "B" | "KB" | "MB" | "GB"];
  return { bytes: Number(m[1]) * 2 ** shift };
}

/**
 * A sustained rate of cost tokens: `perMinute(600)` refills 600 tokens a minute, evenly (one
 * every 100 ms), never in steps. Build it with {@link perSecond}, {@link perMinute} or
 * {@link perHour}.
 */
export interface Rate {
  readonly tokens: number;
  readonly perMs: number;
  readonly [unitBrand]?: "rate";
}

/** A number of cost tokens (a budget's burst). Build it with {@link tokens}. */
export interface Tokens {
  readonly tokens: number;
  readonly [unitBrand]?: "tokens";
}

export function perSecond(n: number): Rate {
  return { tokens: n, perMs: 1000 };
}

export function perMinute(n: number): Rate {
  return { tokens: n, perMs: 60_000 };
}

export function perHour(n: number): Rate {
  return { tokens: n, perMs: 3_600_000 };
}

export function tokens(n: number): Tokens {
  return { tokens: n };
}

/** Tokens per second of a rate. */
export function ratePerSecond(r: Rate): number {
  return (r.tokens * 1000) / r.perMs;
}

/** The YAML spelling of a rate: `"600/min"`, `"10/s"`, `"5000/h"`. Returns undefined for anything else. */
export function parseRate(v: string): Rate | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)\/(s|min|h)$/.exec(v.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  return m[2] === "s" ? perSecond(n) : m[2] === "min" ? perMinute(n) : perHour(n);
}
