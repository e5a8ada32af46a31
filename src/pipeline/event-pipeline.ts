import { prepareEvent, type PreparedEvent } from "../delivery/prepared-event.js";
import type { UndispatchableReason } from "../domain/outcomes.js";
import { tenantAllowedOnTopic } from "../domain/tenant-binding.js";
import type { InboundRecord, RecordEnd, RecordProcessor, RecordSignals } from "../kafka/record-processor.js";
import { decodeRecordHeaders } from "../kafka/record-decoder.js";
import { hasCode } from "../shared/errors.js";
import { DeliveryStage } from "./delivery-stage.js";
import { HandoffWriter } from "./handoff-writer.js";
import type { PipelineDeps } from "./pipeline-deps.js";

const DONE: RecordEnd = { kind: "done" };
const ABANDONED: RecordEnd = { kind: "abandoned" };

/**
 * A record from an event topic, from received to complete:
 *
 *   received ─► decode headers ─► tenant known ─► value is RFC 8259 JSON ─► planned deliveries
 *      │ any check fails: dead letter with the reason (never the payload in logs) ─► complete
 *      │ no subscription matches: counted ─► complete
 *      └ each delivery through the DeliveryStage (concurrently) ─► all ended ─► complete
 *   anything thrown on the way: dead letter "internal_error" ─► complete
 *
 * Complete means the offset may pass the record. Only a member letting go (stop, revoke) leaves a
 * record open, for its next owner.
 */
export class EventPipeline implements RecordProcessor {
  private readonly writer: HandoffWriter;
  private readonly stage: DeliveryStage;

  constructor(private readonly deps: PipelineDeps) {
    this.writer = new HandoffWriter(deps);
    this.stage = new DeliveryStage(deps, this.writer);
  }

  startAt(): number {
    return 0;
  }

  /** Event records never wait to start, so there is nothing to hand over: the next owner reads it. */
  async handOver(): Promise<RecordEnd> {
    return ABANDONED;
  }

  process(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    return this.writer.ending(record, signals, () => this.dispatch(record, signals));
  }

  private async dispatch(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    const { deps } = this;
    deps.metrics?.eventsConsumed.inc({ topic: record.topic });
    const refuse = async (reason: UndispatchableReason, detail: string, tenant?: string) => {
      deps.metrics?.eventsSkipped.inc({ reason });
      return this.writer.undispatchable(record, reason, detail, tenant, signals);
    };

    const decoded = decodeRecordHeaders(record.headers, deps.headerNames);
    if (!decoded.ok) return refuse(decoded.reason, decoded.detail);
    const { tenantId, eventType, eventId } = decoded;
    if (!deps.configs.hasTenant(tenantId)) return refuse("unknown_tenant", "no callback config for this tenant");
    if (record.value === null || record.value.length === 0) return refuse("invalid_json", "the record has no value", tenantId);

    let event: PreparedEvent;
    try {
      const source = { topic: record.topic, partition: record.partition, offset: record.offset };
      event = prepareEvent(tenantId, eventType, record.value, source, Number(record.timestamp) || deps.now(), eventId);
    } catch (error) {
      if (hasCode(error, "INVALID_JSON")) return refuse("invalid_json", error.message, tenantId);
      throw error;
    }
    // Tenant binding: a config that names its topics takes this tenant's records from those only.
    const all = deps.dispatcher.plan(event);
    const planned = all.filter((p) => tenantAllowedOnTopic(p.config, record.topic));
    if (planned.length === 0 && all.length > 0)
      return refuse("tenant_not_allowed_on_topic", `tenant's configs do not accept records from topic ${record.topic}`, tenantId);
    if (planned.length === 0) {
      // A tenant subscribing to some event types only is normal: counted, not a dead letter.
      deps.metrics?.eventsSkipped.inc({ reason: "no_subscription" });
      return DONE;
    }
    const origin = { headers: record.headers, key: record.key };
    const ends = await Promise.all(
      planned.map((p) => this.stage.run({ event, planned: p, origin, signals, mode: "event" }, deps.dispatcher.newExecution(event, p))),
    );
    return ends.some((e) => e.kind === "abandoned") ? ABANDONED : DONE;
  }
}
