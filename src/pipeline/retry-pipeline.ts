import { prepareEvent, type PreparedEvent } from "../delivery/prepared-event.js";
import { newExecution, type CallbackExecution } from "../domain/models.js";
import { subscriptionFingerprint } from "../domain/subscription-ref.js";
import { H, headerText, isSealed, readDeliveryHandoff, type DeliveryHandoff } from "../kafka/handoff-records.js";
import type { InboundRecord, RecordEnd, RecordProcessor, RecordSignals } from "../kafka/record-processor.js";
import { hasCode } from "../shared/errors.js";
import { DeliveryStage, type DeliveryRun } from "./delivery-stage.js";
import { HandoffWriter, recordEndOf } from "./handoff-writer.js";
import type { PipelineDeps } from "./pipeline-deps.js";

const DONE: RecordEnd = { kind: "done" };
const ABANDONED: RecordEnd = { kind: "abandoned" };

/**
 * A record from the retry topic: one delivery, continued where it stopped (same delivery id, same
 * attempt count) under the current configuration of its config and subscription.
 *
 *   received ─► not due: waits without a slot (startAt) ─► another deployment's: left alone, counted
 *      ─► unreadable: dead letter "invalid_retry_record" ─► subscription gone: FAILED, dead letter
 *      ─► DeliveryStage (retry mode) ─► ended ─► complete
 *                                     └ later(at) ─► waits in this process, no write ─► stage again
 *   member lets go of a waiting one: written back to the retry topic as it stands ─► complete
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
    const due = headerText(record.headers, H.dueAt);
    return due !== undefined && /^\d+$/.test(due) ? Number(due) : 0;
  }

  async handOver(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    return recordEndOf(await this.writer.requeue(record, signals));
  }

  process(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    return this.writer.ending(record, signals, () => this.take(record, signals));
  }

  /** Written by another deployment that shares this retry topic: theirs to deliver, not ours. */
  private isForeign(record: InboundRecord): boolean {
    const origin = headerText(record.headers, H.origin);
    return origin !== undefined && origin !== this.deps.origin;
  }

  private async take(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    const { deps } = this;
    if (this.isForeign(record)) {
      deps.metrics?.retryRecordsIgnored.inc({ reason: "foreign_origin" });
      return DONE;
    }
    let handoff: DeliveryHandoff;
    try {
      handoff = readDeliveryHandoff(record.headers);
    } catch (error) {
      if (hasCode(error, "INVALID_HANDOFF_RECORD"))
        return recordEndOf(await this.writer.undispatchable(record, "invalid_retry_record", error.message, undefined, signals));
      throw error;
    }
    // Anyone who may write the retry topic could otherwise have any body signed for any tenant.
    if (!isSealed(record.headers, record.value ?? Buffer.alloc(0), "retry", deps.handoffKeys(handoff.configId))) {
      return recordEndOf(
        await this.writer.undispatchable(
          record,
          "forged_retry_record",
          "the record's MAC is missing or does not verify",
          handoff.tenantId,
          signals,
        ),
      );
    }
    let event: PreparedEvent;
    try {
      event = prepareEvent(handoff.tenantId, handoff.eventType, record.value ?? Buffer.alloc(0), handoff.source, handoff.occurredAt);
    } catch (error) {
      if (hasCode(error, "INVALID_JSON"))
        return recordEndOf(await this.writer.undispatchable(record, "invalid_retry_record", error.message, handoff.tenantId, signals));
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
    const origin = { headers: record.headers, key: record.key };
    if (!config || !config.enabled || !subscription) {
      // Unsubscribed since: the tenant no longer wants it, but nothing accepted vanishes silently.
      const identity = {
        config: { id: handoff.configId },
        subscription: { event_type: handoff.subscriptionEventType, target_url: handoff.target, headers: {} },
        deliveryId: handoff.deliveryId,
      };
      deps.dispatcher.fail(event, execution, "subscription_removed", "Subscription no longer configured");
      return recordEndOf(await this.writer.failedDelivery(event, identity, execution, "subscription_removed", origin, signals));
    }
    return this.continue(
      { event, planned: { config, subscription, deliveryId: handoff.deliveryId }, origin, signals, mode: "retry" },
      execution,
    );
  }

  private remember(deliveryId: string): void {
    this.finished.add(deliveryId);
    // A Set iterates in insertion order: the first is the oldest.
    if (this.finished.size > REMEMBERED_DELIVERIES) this.finished.delete(this.finished.values().next().value as string);
  }

  /** One turn of the delivery: it ends here, or waits in process and comes back with new signals. */
  private async continue(run: DeliveryRun, execution: CallbackExecution): Promise<RecordEnd> {
    const end = await this.stage.run(run, execution);
    switch (end.kind) {
      case "ended":
        // Handed back to the retry topic (PENDING) is not final: that record is the delivery's next.
        if (execution.status !== "PENDING") this.remember(run.planned.deliveryId);
        return DONE;
      case "abandoned":
        return ABANDONED;
      case "later":
        return {
          kind: "later",
          at: end.at,
          resume: (signals) => this.continue({ ...run, signals }, end.execution),
          handOver: async (signals) =>
            (await this.stage.handOver({ ...run, signals }, end.execution, end.at)).kind === "abandoned" ? ABANDONED : DONE,
        };
    }
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
