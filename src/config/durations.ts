/**
 * Durations as pyfly reads them: a bare number is seconds; a string is a number with an optional
 * unit (ms, s, m, h; no unit = seconds). Negative values are never durations.
 */
const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const DURATION_FORMS = 'a number of seconds (e.g. 10 or 0.5) or a string like "500ms", "5s", "1m", "2h"';

/** Returns milliseconds, or undefined when the value is not a duration. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  }
  if (typeof value !== "string") return undefined;
  const match = DURATION_PATTERN.exec(value);
  if (!match) return undefined;
  const unit = (match[2] ?? "s").toLowerCase();
  return Number(match[1]) * (UNIT_MS[unit] as number);
}
