import { abortableSleep } from "../shared/abortable-sleep.js";
import { CanonicalJsonError } from "../delivery/canonical-json.js";
import { prepareEvent } from "../delivery/prepared-event.js";
import { CallbackExecution as ExecutionModel } from "../domain/models.js";
import type { RecordContext, RecordHandler } from "./consumer-runner.js";
import { handoffOf, runDelivery } from "./delivery-runner.js";
import { deliveryDeadLetter, HandoffFormatError, readDeliveryHandoff, undispatchableDeadLetter } from "./handoff-records.js";
import type { EventHandlerDeps } from "./event-handler.js";

/**
 * A record from the retry topic: wait until it is due, then continue the delivery where it
 * stopped (same delivery id, same attempt count, same breaker and backoff), under the current
 * configuration of its config and subscription.
 */
export function createRetryHandler(deps: EventHandlerDeps): RecordHandler {
  const now = deps.now ?? Date.now;
  return async (context: RecordContext) => {
    const { topic, partition, message } = context;
    const source = { topic, partition, offset: message.offset };
    const undispatchable = async (reason: string, detail: string) => {
      deps.logger.error({ topic, partition, offset: message.offset, reason, detail }, "retry record cannot be retried");
      const record = undispatchableDeadLetter(message.value, message.headers, message.key, source, reason, detail, now());
      await deps.publisher.publish(deps.deadLetterTopic, record, context.deadline);
      deps.metrics?.deadLetters.inc({ tenant: "unknown", reason });
    };

    let handoff;
    try {
      handoff = readDeliveryHandoff(message.headers);
    } catch (error) {
      if (error instanceof HandoffFormatError) return undispatchable("invalid_retry_record", error.message);
      throw error;
    }
    const wait = (handoff.dueAt ?? 0) - now();
    // Stopping while a retry waits leaves it uncommitted: the next owner picks it up, still due.
    if (wait > 0) await abortableSleep(wait, context.stopping);

    let event;
    try {
      event = prepareEvent(handoff.tenantId, handoff.eventType, message.value ?? Buffer.alloc(0), handoff.source, handoff.occurredAt);
    } catch (error) {
      if (error instanceof CanonicalJsonError) return undispatchable("invalid_json", error.message);
      throw error;
    }
    const config = deps.configs.findById(handoff.configId);
    const subscription = config?.subscriptions.find((s) => s.event_type === handoff.subscriptionEventType && s.target_url === handoff.targetUrl);
    const execution =
      deps.executions.get(handoff.executionId) ??
      ExecutionModel.parse({
        id: handoff.executionId,
        config_id: handoff.configId,
        tenant_id: handoff.tenantId,
        event_type: handoff.eventType,
        target_url: handoff.targetUrl,
        payload: event.payload,
        attempts: handoff.attempts,
        last_error: handoff.lastError,
        response_status: handoff.responseStatus,
        created_at: handoff.createdAt,
        delivery_id: handoff.deliveryId,
        source: handoff.source,
      });
    const origin = { headers: message.headers, key: message.key };
    if (!config || !config.enabled || !subscription) {
      // Unsubscribed since: the tenant no longer wants it, but nothing accepted vanishes silently.
      execution.status = "FAILED";
      execution.last_error = "Subscription no longer configured";
      deps.executions.save(execution);
      deps.metrics?.deliveries.inc({ tenant: handoff.tenantId, event_type: handoff.eventType, status: "FAILED" });
      const identity = { configId: handoff.configId, subscription: { event_type: handoff.subscriptionEventType, target_url: handoff.targetUrl }, deliveryId: handoff.deliveryId };
      const record = deliveryDeadLetter(handoffOf(event, identity, execution), event.body, "subscription_removed", origin.headers, origin.key, now());
      await deps.publisher.publish(deps.deadLetterTopic, record, context.deadline);
      deps.metrics?.deadLetters.inc({ tenant: deps.configs.hasTenant(handoff.tenantId) ? handoff.tenantId : "unknown", reason: "subscription_removed" });
      return;
    }
    await runDelivery(deps, event, { config, subscription, deliveryId: handoff.deliveryId }, context, origin, execution);
  };
}
