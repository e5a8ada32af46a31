import { prepareEvent, type PreparedEvent } from "../delivery/prepared-event.js";
import type { UndispatchableReason } from "../domain/outcomes.js";
import { tenantAllowedOnTopic } from "../domain/tenant-binding.js";
import type { InboundRecord, RecordEnd, RecordProcessor, RecordSignals } from "../kafka/record-processor.js";
import { decodeRecordHeaders, type RecordHeaders } from "../kafka/record-decoder.js";
import { headerText } from "../kafka/handoff-records.js";
import { binaryCloudEventOf, contentModeOf, readEnvelopes } from "../kafka/cloudevent-envelope.js";
import { wantsEvent, type PlannedDelivery } from "../domain/routing.js";
import type { FilterInput } from "../domain/payload-filter.js";
import { parseLossless, type LosslessValue } from "../shared/lossless-json.js";
import { hasCode } from "../shared/errors.js";
import { DeliveryStage } from "./delivery-stage.js";
import { originOf, traced } from "./record-trace.js";
import type { RecordTrace } from "../observability/tracing.js";
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
    return traced(this.deps, record, (trace) => this.writer.ending(record, signals, () => this.dispatch(record, signals, trace)));
  }

  private async dispatch(record: InboundRecord, signals: RecordSignals, trace: RecordTrace | undefined): Promise<RecordEnd> {
    const { deps } = this;
    deps.metrics?.eventsConsumed.inc({ topic: record.topic });
    const refuse = async (reason: UndispatchableReason, detail: string, tenant?: string) => {
      deps.metrics?.eventsSkipped.inc({ reason });
      trace?.deadLettered(reason);
      return this.writer.undispatchable(record, reason, detail, tenant, signals);
    };

    const read = this.eventsOf(record);
    if (!read.ok) return refuse(read.reason, read.detail, read.tenant);
    const planned: { event: PreparedEvent; planned: PlannedDelivery }[] = [];
    // In a batch each event stands alone: the good ones are delivered, the record is dead-lettered
    // once for the first bad one (its detail names the event).
    let refusal: { reason: UndispatchableReason; detail: string; tenant?: string } | undefined;
    let filteredOut = 0;
    for (const [i, candidate] of read.events.entries()) {
      const where = read.events.length > 1 ? `event [${i}]: ` : "";
      const result = this.plan(record, candidate);
      if ("reason" in result) refusal ??= { ...result, detail: where + result.detail };
      else {
        planned.push(...result.deliveries);
        filteredOut += result.filteredOut;
      }
    }
    if (planned.length === 0 && refusal === undefined) {
      // A tenant subscribing to some event types only, or filtering them, is normal: counted, not
      // a dead letter.
      deps.metrics?.eventsSkipped.inc({ reason: filteredOut > 0 ? "filtered" : "no_subscription" });
      return DONE;
    }
    const origin = originOf(record, trace);
    const ends = await Promise.all(
      planned.map((p) =>
        this.stage.run(
          { event: p.event, planned: p.planned, origin, signals, mode: "event", trace },
          deps.dispatcher.newExecution(p.event, p.planned),
        ),
      ),
    );
    if (ends.some((e) => e.kind === "abandoned")) return ABANDONED;
    return refusal ? refuse(refusal.reason, refusal.detail, refusal.tenant) : DONE;
  }

  /** The events a record carries: one (binary mode, our headers), or what its envelope(s) hold. */
  private eventsOf(record: InboundRecord): RecordEvents {
    const { deps } = this;
    const mode = contentModeOf(record.headers);
    const decoded = decodeRecordHeaders(record.headers, deps.headerNames);
    if (mode === "binary") {
      if (!decoded.ok) return { ok: false, reason: decoded.reason, detail: decoded.detail };
      return {
        ok: true,
        events: [
          {
            tenantId: decoded.tenantId,
            eventType: decoded.eventType,
            eventId: decoded.eventId,
            json: record.value,
            cloudEvent: binaryCloudEventOf(record.headers),
          },
        ],
      };
    }
    // A tenant header is the fallback for envelopes without the tenant attribute (Dapr metadata).
    const fallbackTenant = decoded.ok ? decoded.tenantId : undefined;
    const read = readEnvelopes(record.value, mode, { tenantAttribute: deps.tenantAttribute, fallbackTenant });
    if (!read.ok) return { ok: false, reason: "invalid_cloudevent", detail: read.detail, tenant: fallbackTenant };
    return {
      ok: true,
      events: read.events.map((e) => ({
        tenantId: e.tenantId,
        eventType: e.eventType,
        eventId: e.eventId,
        json: e.data,
        cloudEvent: e.attributes,
      })),
    };
  }

  /** One event's deliveries (and how many its subscriptions' filters left out), or why it has none it should have had. */
  private plan(
    record: InboundRecord,
    candidate: RecordEvent,
  ): { deliveries: { event: PreparedEvent; planned: PlannedDelivery }[]; filteredOut: number } | Refusal {
    const { deps } = this;
    const { tenantId } = candidate;
    if (!deps.configs.hasTenant(tenantId)) return { reason: "unknown_tenant", detail: "no callback config for this tenant" };
    if (candidate.json === null || candidate.json.length === 0)
      return { reason: "invalid_json", detail: "the record has no value", tenant: tenantId };
    let event: PreparedEvent;
    try {
      const source = { topic: record.topic, partition: record.partition, offset: record.offset };
      event = prepareEvent(
        tenantId,
        candidate.eventType,
        candidate.json,
        source,
        Number(record.timestamp) || deps.now(),
        candidate.eventId,
        candidate.cloudEvent,
      );
    } catch (error) {
      if (hasCode(error, "INVALID_JSON")) return { reason: "invalid_json", detail: error.message, tenant: tenantId };
      throw error;
    }
    // Tenant binding: a config that names its topics takes this tenant's records from those only.
    const all = deps.dispatcher.plan(event);
    const planned = all.filter((p) => tenantAllowedOnTopic(p.config, record.topic));
    if (planned.length === 0 && all.length > 0)
      return {
        reason: "tenant_not_allowed_on_topic",
        detail: `tenant's configs do not accept records from topic ${record.topic}`,
        tenant: tenantId,
      };
    // Filters come last: a filtered-out delivery costs no attempt and leaves no dead letter.
    const input = filterInputOf(event, record.headers);
    const wanted = planned.filter((p) => wantsEvent(p.subscription, input));
    if (wanted.length < planned.length) deps.metrics?.deliveriesFiltered.inc({ tenant: tenantId }, planned.length - wanted.length);
    return { deliveries: wanted.map((p) => ({ event, planned: p })), filteredOut: planned.length - wanted.length };
  }
}

/** What a filter reads: the payload, parsed once and losslessly on first need, and the record's headers. */
function filterInputOf(event: PreparedEvent, headers: RecordHeaders): FilterInput {
  let payload: LosslessValue | undefined;
  let byName: Map<string, string> | undefined;
  return {
    payload: () => (payload ??= parseLossless(event.body)),
    header(name) {
      // Kafka header names keep the producer's case; filters name them in lower case.
      byName ??= new Map(Object.keys(headers ?? {}).map((key) => [key.toLowerCase(), headerText(headers, key) ?? ""]));
      return byName.get(name);
    },
  };
}

interface RecordEvent {
  tenantId: string;
  eventType: string;
  eventId: string | null;
  json: string | Buffer | null;
  cloudEvent: Record<string, unknown> | null;
}

interface Refusal {
  reason: UndispatchableReason;
  detail: string;
  tenant?: string;
}

type RecordEvents = { ok: true; events: RecordEvent[] } | ({ ok: false } & Refusal);
