/*
 * Retryability and the wait before the next attempt, in one place. pyfly's rules: 2xx delivered;
 * 408, 429 and >= 500 retryable; any other status final; an exception (transport error, timeout,
 * open breaker) retryable; wait min(backoff * 2^(n-1), 5 min) before attempt n+1. Beyond pyfly: an
 * explicit schedule (the n-th entry before attempt n+1, uncapped) replaces the doubling.
 */

import type { AttemptOutcome } from "../domain/outcomes.js";

export const MAX_BACKOFF_MS = 300_000;

export function verdictOf(outcome: AttemptOutcome): "delivered" | "retryable" | "final" {
  switch (outcome.kind) {
    case "response":
      if (outcome.status >= 200 && outcome.status < 300) return "delivered";
      return isRetryableStatus(outcome.status) ? "retryable" : "final";
    case "error":
      return "retryable";
    case "rejected":
      // The sender's own refusal (address, domain, a request that cannot be built) repeats on every
      // attempt: retrying only delays the dead letter.
      return "final";
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** How a config retries: pyfly's doubling, or an explicit schedule (ms) that replaces it. */
export interface RetryRule {
  max_attempts: number;
  backoff_ms: number;
  retry_schedule: readonly number[] | null;
}

/** Attempts a delivery may make in all: the schedule's entries + 1, else max_attempts. */
export function attemptsAllowed(rule: RetryRule): number {
  return rule.retry_schedule ? rule.retry_schedule.length + 1 : rule.max_attempts;
}

/**
 * Wait before attempt `attempts + 1`, `attempts` (>= 1) having been made: the schedule's entry, or
 * the doubling; a receiver's Retry-After is a floor (capped at 5 min) on either.
 */
export function nextDelayMs(
  rule: RetryRule,
  attempts: number,
  options: { jitter?: number; retryAfterMs?: number; random?: () => number } = {},
): number {
  const schedule = rule.retry_schedule;
  if (!schedule) return backoffDelayMs(rule.backoff_ms, attempts, options);
  const entry = schedule[Math.min(Math.max(0, attempts - 1), schedule.length - 1)] ?? 0;
  return withRetryAfter(jittered(entry, options), options.retryAfterMs);
}

const jittered = (ms: number, options: { jitter?: number; random?: () => number }): number => {
  const jitter = options.jitter ?? 0;
  // Jitter only shortens the wait, so caps and schedules are upper bounds that hold.
  return jitter > 0 ? ms * (1 - jitter * (options.random ?? Math.random)()) : ms;
};

// A receiver's Retry-After is a floor on the wait, never beyond the cap.
const withRetryAfter = (ms: number, retryAfterMs: number | undefined): number =>
  Math.round(Math.max(ms, Math.min(retryAfterMs ?? 0, MAX_BACKOFF_MS)));

/** Wait before attempt `attempt + 1`, given `attempt` attempts made so far (1-based). */
export function backoffDelayMs(
  backoffMs: number,
  attempt: number,
  options: { jitter?: number; retryAfterMs?: number; random?: () => number } = {},
): number {
  const exponential = Math.min(backoffMs * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
  return withRetryAfter(jittered(exponential, options), options.retryAfterMs);
}

/** Retry-After as seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
