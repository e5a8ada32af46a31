import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AttemptOutcome, BreakerState } from "../domain/outcomes.js";

/*
 * Every metric the sidecar exports, in one registry. Label values stay bounded: target_host is
 * host:port of a configured target (never a path or query), tenants are configured tenants (else
 * "unknown"), event types are capped (BoundedLabel), reasons and outcomes come from fixed lists.
 */

export const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

export function attemptOutcomeLabel(outcome: AttemptOutcome): string {
  switch (outcome.kind) {
    case "response":
      return `${Math.floor(outcome.status / 100)}xx`;
    case "error":
      return outcome.category;
    case "rejected":
      return "rejected";
  }
}

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  // The breaker registry owns breaker state; the gauge reads it at scrape time.
  let breakerStates: () => Map<string, BreakerState> = () => new Map();
  let backlog: () => Promise<number | undefined> = async () => undefined;
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const metrics = {
    registry,
    eventsConsumed: new Counter({
      name: "callbacks_events_consumed_total",
      help: "Kafka records consumed, by topic",
      labelNames: ["topic"],
      registers,
    }),
    eventsSkipped: new Counter({
      name: "callbacks_events_skipped_total",
      help: "Records that could not be dispatched, by reason",
      labelNames: ["reason"],
      registers,
    }),
    deliveriesFiltered: new Counter({
      name: "callbacks_deliveries_filtered_total",
      help: "Deliveries a subscription's payload filter left out (no attempt, no dead letter), by tenant",
      labelNames: ["tenant"],
      registers,
    }),
    proxyErrors: new Counter({
      name: "callbacks_proxy_errors_total",
      help: "Attempts the egress proxy failed (not charged to the target's breaker), by reason",
      labelNames: ["reason"],
      registers,
    }),
    tlsReloads: new Counter({
      name: "callbacks_tls_reloads_total",
      help: "Receiver TLS files changed on disk: reloaded, or kept the previous material (failed)",
      labelNames: ["outcome"],
      registers,
    }),
    deliveries: new Counter({
      name: "callbacks_deliveries_total",
      help: "Final delivery outcomes",
      labelNames: ["tenant", "event_type", "status"],
      registers,
    }),
    attempts: new Counter({
      name: "callbacks_delivery_attempts_total",
      help: "HTTP delivery attempts by outcome (2xx 3xx 4xx 5xx timeout transport_error proxy_error circuit_open rejected)",
      labelNames: ["target_host", "outcome"],
      registers,
    }),
    attemptDuration: new Histogram({
      name: "callbacks_delivery_duration_seconds",
      help: "Duration of one delivery attempt",
      labelNames: ["target_host"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    eventLatency: new Histogram({
      name: "callbacks_event_latency_seconds",
      help: "From the record's timestamp to a delivery's final outcome",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
    breakerState: new Gauge({
      name: "callbacks_circuit_breaker_state",
      help: "Circuit breaker state per target host (0 closed, 1 half-open, 2 open)",
      labelNames: ["target_host"],
      registers,
      collect() {
        for (const [host, state] of breakerStates()) this.set({ target_host: host }, BREAKER_STATE_VALUE[state]);
      },
    }),
    breakerTransitions: new Counter({
      name: "callbacks_circuit_breaker_transitions_total",
      help: "Circuit breaker transitions per target host and new state",
      labelNames: ["target_host", "state"],
      registers,
    }),
    inflight: new Gauge({ name: "callbacks_inflight_deliveries", help: "Deliveries in progress", registers }),
    consumerPaused: new Gauge({
      name: "callbacks_consumer_paused",
      help: "1 while fetching is paused because in-flight work is full",
      registers,
    }),
    retriesScheduled: new Counter({
      name: "callbacks_retries_scheduled_total",
      help: "Deliveries handed to the retry topic",
      labelNames: ["target_host"],
      registers,
    }),
    deadLetters: new Counter({
      name: "callbacks_dead_letters_total",
      help: "Records and deliveries written to the dead-letter topic",
      labelNames: ["tenant", "reason"],
      registers,
    }),
    handoffRefused: new Counter({
      name: "callbacks_handoff_refused_total",
      help: "Retry and dead-letter records Kafka refused for good, by topic and Kafka's error (the records are not written)",
      labelNames: ["topic", "reason"],
      registers,
    }),
    retryRecordsIgnored: new Counter({
      name: "callbacks_retry_records_ignored_total",
      help: "Retry records left alone: written by another deployment sharing the retry topic (foreign_origin), or a copy of a delivery this process already ended (already_final)",
      labelNames: ["reason"],
      registers,
    }),
    rateLimited: new Counter({
      name: "callbacks_rate_limited_total",
      help: "Times a delivery was held back by its subscription's or config's rate limit (no attempt spent)",
      labelNames: ["tenant"],
      registers,
    }),
    rateLimitWaiting: new Gauge({
      name: "callbacks_rate_limit_waiting",
      help: "Deliveries in this process waiting for their rate limit (those handed to the retry topics are not counted)",
      registers,
    }),
    retryBacklog: new Gauge({
      name: "callbacks_retry_backlog",
      help: "Records in the retry topic and its delay tiers not yet committed by the retry consumers",
      registers,
      async collect() {
        const value = await backlog();
        if (value !== undefined) this.set(value);
      },
    }),
    readRetryBacklogFrom(source: () => Promise<number | undefined>) {
      backlog = source;
    },
    readBreakerStatesFrom(source: () => Map<string, BreakerState>) {
      breakerStates = source;
    },
  };
  return metrics;
}
