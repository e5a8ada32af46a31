import type { PreparedEvent } from "../delivery/prepared-event.js";
import { newExecution, type CallbackExecution } from "../domain/models.js";
import { subscriptionFingerprint } from "../domain/subscription-ref.js";
import { eventOfHandoff, H, headerText, isSealed, readDeliveryHandoff, type DeliveryHandoff } from "../kafka/handoff-records.js";
import type { InboundRecord, RecordEnd, RecordProcessor, RecordSignals } from "../kafka/record-processor.js";
import { hasCode } from "../shared/errors.js";
import { DeliveryStage, type DeliveryRun } from "./delivery-stage.js";
import { HandoffWriter } from "./handoff-writer.js";
import { originOf, traced } from "./record-trace.js";
import type { RecordTrace } from "../observability/tracing.js";
import type { PipelineDeps } from "./pipeline-deps.js";

const DONE: RecordEnd = { kind: "done" };

/**
 * A record from the retry topic: one delivery, continued where it stopped (same delivery id, same
 * attempt count) under the current configuration of its config and subscription.
 *
 *   received ─► not due: waits without a slot (startAt) ─► another deployment's: left alone, counted
 *      ─► a tier's record with more than the first tier left: written to the tier that fits ─► complete
 *      ─► due soon: parked until due ─► unreadable: dead letter "invalid_retry_record"
 *      ─► subscription gone: FAILED, dead letter ─► DeliveryStage (retry mode) ─► done ─► complete
 *                                                                    └ later(at) ─► parked, no write ─► stage again
 *   member lets go of a waiting one: written back as it stands, where its wait fits ─► complete
 */
export class RetryPipeline implements RecordProcessor {
  private readonly writer: HandoffWriter;
  private readonly stage: DeliveryStage;
  /**
   * Deliveries that ended DELIVERED or FAILED here recently. A retry record for one of them is a
   * copy (a re-read after a rebalance, or produced again by someone: the MAC proves where a record
   * came from, not that it is new): another attempt could only duplicate a delivered webhook or
   * dead-letter one that was delivered. Bounded; past it, a copy is one more at-least-once attempt.
   */
  private readonly finished = new Set<string>();

  constructor(private readonly deps: PipelineDeps) {
    this.writer = new HandoffWriter(deps);
    this.stage = new DeliveryStage(deps, this.writer);
  }

  startAt(record: InboundRecord): number {
    if (this.isForeign(record)) return 0;
    return this.deps.tiers.startAt(record.topic, Number(record.timestamp) || 0, dueAtOf(record));
  }

  handOver(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    return this.writer.requeue(record, dueAtOf(record), signals);
  }

  process(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    return traced(this.deps, record, (trace) => this.writer.ending(record, signals, () => this.take(record, signals, trace)));
  }

  /** Written by another deployment that shares this retry topic: theirs to deliver, not ours. */
  private isForeign(record: InboundRecord): boolean {
    const origin = headerText(record.headers, H.origin);
    return origin !== undefined && origin !== this.deps.origin;
  }

  private async take(record: InboundRecord, signals: RecordSignals, trace: RecordTrace | undefined): Promise<RecordEnd> {
    const { deps } = this;
    if (this.isForeign(record)) {
      deps.metrics?.retryRecordsIgnored.inc({ reason: "foreign_origin" });
      return DONE;
    }
    // Started before it is due: a tier's record. The rest of its wait goes on in Kafka, or, when
    // short, parked here; nothing is attempted before its due time.
    const dueAt = dueAtOf(record);
    const left = dueAt - deps.now();
    if (left > deps.tiers.inMemoryLimitMs) return this.writer.requeue(record, dueAt, signals);
    if (left > 0) return { kind: "later", at: dueAt, resume: (s) => this.process(record, s), handOver: (s) => this.handOver(record, s) };
    let handoff: ReturnType<typeof readDeliveryHandoff>;
    try {
      handoff = readDeliveryHandoff(record.headers);
    } catch (error) {
      if (hasCode(error, "INVALID_HANDOFF_RECORD")) {
        trace?.deadLettered("invalid_retry_record");
        return this.writer.undispatchable(record, "invalid_retry_record", error.message, undefined, signals);
      }
      throw error;
    }
    // Anyone who may write the retry topic could otherwise have any body signed for any tenant.
    if (!isSealed(record.headers, record.value ?? Buffer.alloc(0), "retry", deps.handoffKeys(handoff.configId))) {
      trace?.deadLettered("forged_retry_record");
      return this.writer.undispatchable(
        record,
        "forged_retry_record",
        "the record's MAC is missing or does not verify",
        handoff.tenantId,
        signals,
      );
    }
    let event: PreparedEvent;
    try {
      event = eventOfHandoff(handoff, record.value);
    } catch (error) {
      if (hasCode(error, "INVALID_JSON")) {
        trace?.deadLettered("invalid_retry_record");
        return this.writer.undispatchable(record, "invalid_retry_record", error.message, handoff.tenantId, signals);
      }
      throw error;
    }
    const kept = deps.executions.get(handoff.executionId);
    if (this.finished.has(handoff.deliveryId) || (kept !== undefined && kept.status !== "PENDING")) {
      deps.metrics?.retryRecordsIgnored.inc({ reason: "already_final" });
      return DONE;
    }
    const config = deps.configs.findById(handoff.configId);
    const subscription = config?.subscriptions.find(
      (s) => s.event_type === handoff.subscriptionEventType && subscriptionFingerprint(s) === handoff.subscriptionFingerprint,
    );
    const execution = kept ?? deps.dispatcher.attachPayload(executionFrom(handoff, subscription?.target_url ?? handoff.target), event);
    const origin = originOf(record, trace);
    if (!config || !config.enabled || !subscription) {
      // Unsubscribed since: the tenant no longer wants it, but nothing accepted vanishes silently.
      const identity = {
        config: { id: handoff.configId },
        subscription: { event_type: handoff.subscriptionEventType, target_url: handoff.target, headers: {} },
        deliveryId: handoff.deliveryId,
      };
      deps.dispatcher.fail(event, execution, "subscription_removed", "Subscription no longer configured");
      trace?.deadLettered("subscription_removed");
      return this.writer.failedDelivery(event, identity, execution, "subscription_removed", origin, signals);
    }
    return this.continue(
      { event, planned: { config, subscription, deliveryId: handoff.deliveryId }, origin, signals, mode: "retry", trace },
      execution,
      handoff.slotReserved,
    );
  }

  private remember(deliveryId: string): void {
    this.finished.add(deliveryId);
    // A Set iterates in insertion order: the first is the oldest.
    if (this.finished.size > REMEMBERED_DELIVERIES) this.finished.delete(this.finished.values().next().value as string);
  }

  /** The delivery's stage run; a delivery that ended final here is remembered, however many parks it took. */
  private async continue(run: DeliveryRun, execution: CallbackExecution, slotReserved: boolean): Promise<RecordEnd> {
    return this.remembering(await this.stage.run(run, execution, slotReserved), run, execution);
  }

  private remembering(end: RecordEnd, run: DeliveryRun, execution: CallbackExecution): RecordEnd {
    if (end.kind === "later") return { ...end, resume: async (signals) => this.remembering(await end.resume(signals), run, execution) };
    // Handed back to the retry topic (PENDING) is not final: that record is the delivery's next.
    if (end.kind === "done" && execution.status !== "PENDING") this.remember(run.planned.deliveryId);
    return end;
  }
}

const REMEMBERED_DELIVERIES = 10_000;

function executionFrom(h: DeliveryHandoff, targetUrl: string): CallbackExecution {
  return newExecution({
    id: h.executionId,
    config_id: h.configId,
    tenant_id: h.tenantId,
    event_type: h.eventType,
    target_url: targetUrl,
    payload: null,
    attempts: h.attempts,
    last_error: h.lastError,
    response_status: h.responseStatus,
    created_at: h.createdAt,
    delivery_id: h.deliveryId,
    source: h.source,
  });
}

/** The record's due time (epoch ms); 0 (due now) when absent or unreadable, which the layout check then refuses. */
function dueAtOf(record: InboundRecord): number {
  const due = headerText(record.headers, H.dueAt);
  return due !== undefined && /^\d+$/.test(due) ? Number(due) : 0;
}
