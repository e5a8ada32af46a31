import type { CallbackExecution } from "../domain/models.js";
import type { DeliveryObserver } from "../delivery/dispatcher.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import type { AttemptOutcome } from "../domain/outcomes.js";
import { BoundedLabel } from "./bounded-label.js";
import { attemptOutcomeLabel, type Metrics } from "./metrics.js";

/** Feeds the dispatcher's outcomes into the metrics. */
export const MAX_EVENT_TYPE_LABELS = 200;

export function metricsObserver(metrics: Metrics, now: () => number = Date.now): DeliveryObserver {
  const eventTypes = new BoundedLabel(MAX_EVENT_TYPE_LABELS);
  return {
    attempt(targetHost: string, outcome: AttemptOutcome, durationMs: number) {
      metrics.attempts.inc({ target_host: targetHost, outcome: attemptOutcomeLabel(outcome) });
      if (outcome.kind === "error" && outcome.category === "proxy_error") metrics.proxyErrors.inc({ reason: outcome.reason });
      if (outcome.kind !== "rejected") metrics.attemptDuration.observe({ target_host: targetHost }, durationMs / 1000);
    },
    final(execution: CallbackExecution, event: PreparedEvent) {
      metrics.deliveries.inc({ tenant: execution.tenant_id, event_type: eventTypes.value(execution.event_type), status: execution.status });
      metrics.eventLatency.observe(Math.max(0, now() - event.occurredAt) / 1000);
    },
  };
}
