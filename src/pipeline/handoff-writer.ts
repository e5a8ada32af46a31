import type { CallbackExecution, CallbackSubscription } from "../domain/models.js";
import { redactUrl, subscriptionFingerprint } from "../domain/subscription-ref.js";
import type { DeadLetterReason, UndispatchableReason } from "../domain/outcomes.js";
import type { PlannedDelivery } from "../domain/routing.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import { targetOf } from "../delivery/target.js";
import {
  deliveryDeadLetter,
  retryRecord,
  sealed,
  undispatchableDeadLetter,
  writableHeaders,
  type DeliveryHandoff,
  type OutboundRecord,
} from "../kafka/handoff-records.js";
import type { HandoffKind } from "../kafka/handoff-mac.js";
import type { InboundRecord, RecordEnd, RecordSignals } from "../kafka/record-processor.js";
import { hasCode } from "../shared/errors.js";
import type { PipelineDeps } from "./pipeline-deps.js";

const DONE: RecordEnd = { kind: "done" };
const ABANDONED: RecordEnd = { kind: "abandoned" };

/** The original record a delivery came from, carried into what we write. */
export interface Origin {
  headers: InboundRecord["headers"];
  key: Buffer | null;
}

/**
 * Every write the pipeline makes to its own topics, and so the one dead-letter path. A write ends
 * the record's work `done` when Kafka took it, and also when Kafka refused it for good (logged
 * with the record's coordinates and counted, so one bad record cannot freeze the others);
 * `abandoned` when the member let go first (the record stays uncommitted for its next owner).
 */
export class HandoffWriter {
  constructor(private readonly deps: PipelineDeps) {}

  /**
   * The pipeline's last line, so that every record ends: whatever `work` throws makes the record an
   * internal_error dead letter (its bytes as they came), never an open record. Only a member letting
   * go leaves one open.
   */
  async ending(record: InboundRecord, signals: RecordSignals, work: () => Promise<RecordEnd>): Promise<RecordEnd> {
    try {
      return await work();
    } catch (error) {
      if (signals.deadline.aborted) return { kind: "abandoned" };
      this.deps.logger.error(
        { topic: record.topic, partition: record.partition, offset: record.offset, err: (error as Error)?.message },
        "record broke unexpectedly",
      );
      return this.undispatchable(record, "internal_error", "internal error", undefined, signals);
    }
  }

  /** A record that cannot be dispatched at all: its bytes as they came, and why. */
  undispatchable(
    record: InboundRecord,
    reason: UndispatchableReason | "internal_error",
    detail: string,
    tenant: string | undefined,
    signals: RecordSignals,
  ): Promise<RecordEnd> {
    const source = { topic: record.topic, partition: record.partition, offset: record.offset };
    this.deps.logger.warn({ ...source, reason, detail }, "record dead-lettered");
    const value = undispatchableDeadLetter(record.value, record.headers, record.key, source, reason, detail, this.deps.now());
    return this.deadLetter(value, reason, tenant, source, signals);
  }

  /** A delivery that ended FAILED (or broke in a way nobody foresaw). */
  failedDelivery(
    event: PreparedEvent,
    planned: DeliveryIdentity,
    execution: CallbackExecution,
    reason: DeadLetterReason,
    origin: Origin,
    signals: RecordSignals,
  ): Promise<RecordEnd> {
    this.deps.logger.warn(
      {
        tenant: event.tenantId,
        target_host: targetOf(planned.subscription.target_url).host,
        delivery_id: planned.deliveryId,
        attempts: execution.attempts,
        reason,
        last_error: execution.last_error,
      },
      "delivery failed; written to the dead-letter topic",
    );
    const value = deliveryDeadLetter(handoffOf(event, planned, execution), event.body, reason, origin.headers, origin.key, this.deps.now());
    return this.deadLetter(this.seal(value, "dead-letter", planned.config.id), reason, event.tenantId, event.source, signals);
  }

  /**
   * Hands a delivery to the retry topic or the delay tier its wait fits, due at `dueAt`, attempts
   * as they stand; `slotReserved`: `dueAt` is a rate-limit slot taken for it.
   */
  async retry(
    event: PreparedEvent,
    planned: PlannedDelivery,
    execution: CallbackExecution,
    dueAt: number,
    origin: Origin,
    signals: RecordSignals,
    slotReserved = false,
  ): Promise<RecordEnd> {
    const handoff = handoffOf(event, planned, execution);
    const value = retryRecord(handoff, event.body, dueAt, origin.headers, origin.key, this.deps.origin, slotReserved);
    const topic = this.deps.tiers.topicFor(dueAt - this.deps.now());
    const written = await this.write(topic, this.seal(value, "retry", planned.config.id), event.source, signals);
    if (written === true) this.deps.metrics?.retriesScheduled.inc({ target_host: targetOf(planned.subscription.target_url).host });
    return written === "abandoned" ? ABANDONED : DONE;
  }

  /**
   * Puts a retry record back as it was read, MAC and all, where a wait until `dueAt` belongs: a
   * member letting go of one it had not started, or a tier's record with a longer wait left.
   */
  async requeue(record: InboundRecord, dueAt: number, signals: RecordSignals): Promise<RecordEnd> {
    const source = { topic: record.topic, partition: record.partition, offset: record.offset };
    const headers = writableHeaders(record.headers);
    const topic = this.deps.tiers.topicFor(dueAt - this.deps.now());
    const written = await this.write(topic, { key: record.key, value: record.value ?? Buffer.alloc(0), headers }, source, signals);
    return written === "abandoned" ? ABANDONED : DONE;
  }

  private async deadLetter(
    value: OutboundRecord,
    reason: DeadLetterReason,
    tenant: string | undefined,
    source: unknown,
    signals: RecordSignals,
  ): Promise<RecordEnd> {
    const written = await this.write(this.deps.topics.deadLetter, value, source, signals);
    // Only configured tenants become label values; anything else is one bounded bucket.
    if (written === true) this.deps.metrics?.deadLetters.inc({ tenant: this.tenantLabel(tenant), reason });
    return written === "abandoned" ? ABANDONED : DONE;
  }

  /**
   * Signs with the config's first handoff key. A config removed since, with no handoff key
   * configured, has none: its dead letter goes unsigned, and replay will not deliver it anyway.
   */
  private seal(record: OutboundRecord, kind: HandoffKind, configId: string): OutboundRecord {
    const [key] = this.deps.handoffKeys(configId);
    return key ? sealed(record, kind, key) : record;
  }

  tenantLabel(tenant: string | undefined): string {
    return tenant !== undefined && this.deps.configs.hasTenant(tenant) ? tenant : "unknown";
  }

  /** True when Kafka took it; false when it refused it for good (the record escapes); "abandoned". */
  private async write(topic: string, value: OutboundRecord, source: unknown, signals: RecordSignals): Promise<boolean | "abandoned"> {
    try {
      await this.deps.publisher.publish(topic, value, signals.deadline);
      return true;
    } catch (error) {
      if (hasCode(error, "HANDOFF_ABANDONED") || signals.deadline.aborted) return "abandoned";
      const code = hasCode(error, "HANDOFF_REFUSED") ? "HANDOFF_REFUSED" : "WRITE_FAILED";
      // The publisher counts refusals (callbacks_handoff_refused_total, alerted on); this line is
      // what remains of the record, with the coordinates to find its source.
      this.deps.logger.error(
        { topic, source, code, err: (error as Error)?.message },
        "Kafka refused a handoff record for good; it exists only in this log line",
      );
      // A refusal the publisher counted itself; anything else is counted here, under its own reason.
      if (code === "WRITE_FAILED") this.deps.metrics?.handoffRefused.inc({ topic, reason: "write_failed" });
      return false;
    }
  }
}

/** What names a delivery in the records we write; a PlannedDelivery is one. */
export interface DeliveryIdentity {
  config: { id: string };
  subscription: Pick<CallbackSubscription, "event_type" | "target_url" | "headers">;
  deliveryId: string;
}

export function handoffOf(event: PreparedEvent, planned: DeliveryIdentity, execution: CallbackExecution): DeliveryHandoff {
  return {
    deliveryId: planned.deliveryId,
    executionId: execution.id,
    configId: planned.config.id,
    tenantId: event.tenantId,
    eventType: event.eventType,
    subscriptionEventType: planned.subscription.event_type,
    subscriptionFingerprint: subscriptionFingerprint(planned.subscription),
    target: redactUrl(planned.subscription.target_url),
    attempts: execution.attempts,
    createdAt: execution.created_at,
    occurredAt: event.occurredAt,
    lastError: execution.last_error,
    responseStatus: execution.response_status,
    source: event.source,
    eventId: event.eventId ?? undefined,
    cloudEvent: event.cloudEvent ?? undefined,
  };
}
