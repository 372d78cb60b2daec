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
