/*
 * Retryability and waiting, in one place. pyfly's rules: 2xx delivered; 408, 429 and >= 500
 * retryable; any other status final; an exception (transport error, timeout, open breaker)
 * retryable; wait min(backoff * 2^(n-1), 5 min) before attempt n+1.
 */

import type { RejectReason } from "../domain/outcomes.js";

export const MAX_BACKOFF_MS = 300_000;

export type AttemptOutcome =
  | { kind: "response"; status: number; retryAfterMs?: number }
  | { kind: "error"; category: "timeout" | "transport_error" | "circuit_open"; message: string }
  | { kind: "rejected"; reason: RejectReason; message: string };

export type Verdict = "delivered" | "retryable" | "final";

export function verdictOf(outcome: AttemptOutcome): Verdict {
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

/** Wait before attempt `attempt + 1`, given `attempt` attempts made so far (1-based). */
export function backoffDelayMs(
  backoffMs: number,
  attempt: number,
  options: { jitter?: number; retryAfterMs?: number; random?: () => number } = {},
): number {
  const exponential = Math.min(backoffMs * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
  const jitter = options.jitter ?? 0;
  // Jitter only shortens the wait, so the cap and pyfly's upper bound both hold.
  const jittered = jitter > 0 ? exponential * (1 - jitter * (options.random ?? Math.random)()) : exponential;
  // A receiver's Retry-After is a floor on the wait, never beyond the cap.
  const floor = Math.min(options.retryAfterMs ?? 0, MAX_BACKOFF_MS);
  return Math.round(Math.max(jittered, floor));
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
