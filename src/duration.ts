import { InvalidInputError } from "./errors.js";

/** A duration: milliseconds as a number, or a string such as "500ms", "30s", "5m", "2h", "7d". */
export type Duration = number | `${number}${"ms" | "s" | "m" | "h" | "d"}`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function toMs(d: Duration, what: string): number {
  if (typeof d === "number") {
    if (!Number.isFinite(d) || d < 0) throw new InvalidInputError(`${what} must be a duration of 0 or more milliseconds, got ${d}`);
    return d;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(String(d));
  if (!m) throw new InvalidInputError(`${what}: cannot read ${JSON.stringify(d)} as a duration: write it like 500ms, 30s, 5m, 2h or 7d`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
