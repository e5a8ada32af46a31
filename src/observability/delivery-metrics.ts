import type { CallbackExecution } from "../domain/models.js";
import type { DeliveryObserver } from "../delivery/dispatcher.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import type { AttemptOutcome } from "../delivery/retry-policy.js";
import { attemptOutcomeLabel, type Metrics } from "./metrics.js";

/** Feeds the dispatcher's outcomes into the metrics. */
export function metricsObserver(metrics: Metrics, now: () => number = Date.now): DeliveryObserver {
  return {
    attempt(targetHost: string, outcome: AttemptOutcome, durationMs: number) {
      metrics.attempts.inc({ target_host: targetHost, outcome: attemptOutcomeLabel(outcome) });
      if (outcome.kind !== "rejected") metrics.attemptDuration.observe({ target_host: targetHost }, durationMs / 1000);
    },
    final(execution: CallbackExecution, event: PreparedEvent) {
      metrics.deliveries.inc({ tenant: execution.tenant_id, event_type: execution.event_type, status: execution.status });
      metrics.eventLatency.observe(Math.max(0, now() - event.occurredAt) / 1000);
    },
  };
}
