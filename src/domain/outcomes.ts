/*
 * The outcome vocabulary that the pipeline, the dispatcher, logs and metrics all read. Each list is
 * fixed, so every value is a bounded metric label and callers switch on it instead of on messages.
 */

/**
 * Why an attempt ended before any HTTP exchange, for a reason no retry changes: refused by us
 * before anything reached the network, or our client certificate refused in the TLS handshake.
 * Each is final for the delivery and says nothing about the host's health (no breaker count).
 */
export const REJECT_REASONS = ["domain_not_authorized", "ssrf_blocked", "invalid_request", "client_certificate_rejected"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Why the egress proxy, not the target, failed an attempt (retried; no breaker count). */
export const PROXY_FAILURES = ["unreachable", "auth_required", "refused", "timeout", "bad_response"] as const;
export type ProxyFailure = (typeof PROXY_FAILURES)[number];

/** Why a delivery ended FAILED. */
/** `internal_error`: a fault of ours nobody foresaw; dead-lettered rather than left open. */
export const FAILURE_REASONS = [...REJECT_REASONS, "final_status", "attempts_exhausted", "subscription_removed", "internal_error"] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Why a record could not be dispatched at all. */
export const UNDISPATCHABLE_REASONS = [
  "missing_tenant",
  "missing_event_type",
  "invalid_header",
  "invalid_json",
  "invalid_cloudevent",
  "unknown_tenant",
  "tenant_not_allowed_on_topic",
  "invalid_retry_record",
  "forged_retry_record",
] as const;
export type UndispatchableReason = (typeof UNDISPATCHABLE_REASONS)[number];

/** Every reason a dead letter can carry. */
export const DEAD_LETTER_REASONS = [...UNDISPATCHABLE_REASONS, ...FAILURE_REASONS] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** How one HTTP attempt ended, as the sender saw it: what retry policy, breaker, metrics and spans read. */
export type AttemptOutcome =
  | { kind: "response"; status: number; retryAfterMs?: number }
  | { kind: "error"; category: "timeout" | "transport_error" | "circuit_open"; message: string }
  // The egress proxy failed, not the target: retried, but kept out of the target's breaker.
  | { kind: "error"; category: "proxy_error"; reason: ProxyFailure; message: string }
  | { kind: "rejected"; reason: RejectReason; message: string };

/** A host's circuit breaker, as metrics and spans report it. */
export type BreakerState = "closed" | "half_open" | "open";
