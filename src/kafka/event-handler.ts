import type { Logger } from "pino";
import { CanonicalJsonError } from "../delivery/canonical-json.js";
import { prepareEvent } from "../delivery/prepared-event.js";
import type { EventSource } from "../domain/models.js";
import type { ConfigRepository } from "../repository/config-repository.js";
import type { Metrics, SkipReason } from "../observability/metrics.js";
import type { RecordContext, RecordHandler } from "./consumer-runner.js";
import { runDelivery, type DeliveryRunnerDeps } from "./delivery-runner.js";
import { undispatchableDeadLetter } from "./handoff-records.js";
import { decodeRecordHeaders, type HeaderNames } from "./record-decoder.js";

export interface EventHandlerDeps extends DeliveryRunnerDeps {
  configs: ConfigRepository;
  headerNames: HeaderNames;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * A record from an event topic: decode the contract, route it, run its deliveries concurrently.
 * A record that cannot be dispatched is logged (coordinates and reason, never the payload),
 * counted, dead-lettered, and done: it never stops the consumer.
 */
export function createEventHandler(deps: EventHandlerDeps): RecordHandler {
  const now = deps.now ?? Date.now;
  return async (context: RecordContext) => {
    const { topic, partition, message } = context;
    const source: EventSource = { topic, partition, offset: message.offset };
    deps.metrics?.eventsConsumed.inc({ topic });

    const skip = async (reason: SkipReason, detail: string, tenant: string | undefined, deadLetter = true) => {
      deps.metrics?.eventsSkipped.inc({ reason });
      deps.logger.warn({ topic, partition, offset: message.offset, reason, detail }, "record skipped");
      if (!deadLetter) return;
      const record = undispatchableDeadLetter(message.value, message.headers, message.key, source, reason, detail, now());
      await deps.publisher.publish(deps.deadLetterTopic, record, context.deadline);
      // Only configured tenants become label values; anything else is one bounded bucket.
      deps.metrics?.deadLetters.inc({ tenant: tenant !== undefined && deps.configs.hasTenant(tenant) ? tenant : "unknown", reason });
    };

    const decoded = decodeRecordHeaders(message.headers, deps.headerNames);
    if (!decoded.ok) return skip(decoded.reason, decoded.detail, undefined);
    const { tenantId, eventType } = decoded;
    if (!deps.configs.hasTenant(tenantId)) return skip("unknown_tenant", "no callback config for this tenant", undefined);
    if (message.value === null || message.value.length === 0) return skip("invalid_json", "the record has no value", tenantId);

    let event;
    try {
      event = prepareEvent(tenantId, eventType, message.value, source, Number(message.timestamp) || now());
    } catch (error) {
      if (error instanceof CanonicalJsonError) return skip("invalid_json", error.message, tenantId);
      throw error;
    }
    const planned = deps.dispatcher.plan(event);
    // A tenant subscribing to some event types only is normal: counted, not a dead letter.
    if (planned.length === 0) return skip("no_subscription", `no enabled subscription of tenant matches ${eventType}`, tenantId, false);

    const origin = { headers: message.headers, key: message.key };
    await Promise.all(planned.map((p) => runDelivery(deps, event, p, context, origin)));
  };
}
