import type { AttemptHooks } from "../delivery/dispatcher.js";
import { targetOf } from "../delivery/target.js";
import type { PlannedDelivery } from "../domain/routing.js";
import { redactUrl } from "../domain/subscription-ref.js";
import { contentModeOf } from "../kafka/cloudevent-envelope.js";
import { headerText } from "../kafka/handoff-records.js";
import type { InboundRecord, RecordEnd } from "../kafka/record-processor.js";
import type { RecordTrace, TraceCarrier } from "../observability/tracing.js";
import type { Origin } from "./handoff-writer.js";
import type { PipelineDeps } from "./pipeline-deps.js";

/**
 * Runs a record's work inside its consumer span when tracing is on (and ends the span with the
 * work, whatever it became); with tracing off, just the work.
 */
export function traced(
  deps: PipelineDeps,
  record: InboundRecord,
  work: (trace: RecordTrace | undefined) => Promise<RecordEnd>,
): Promise<RecordEnd> {
  let trace: RecordTrace | undefined;
  try {
    trace = deps.tracing?.record(record, carrierOf(record), deps.now());
  } catch (error) {
    // A span is an observation: the record goes on without one rather than stay open.
    const at = { topic: record.topic, partition: record.partition, offset: record.offset };
    deps.logger.warn({ ...at, err: (error as Error)?.message }, "no span for this record");
  }
  if (trace === undefined) return work(undefined);
  const span = trace;
  return span.run(() => work(span)).finally(() => span.end());
}

/**
 * Where a record's trace context is: W3C headers (producers, Dapr, our own retry and dead-letter
 * records), the CloudEvents Kafka binding's `ce_traceparent`, or, for a structured CloudEvent
 * without either, the distributed-tracing extension inside the envelope.
 */
export function carrierOf(record: InboundRecord): TraceCarrier {
  let envelope: Record<string, unknown> | undefined;
  return (name) => {
    const header = headerText(record.headers, name) ?? headerText(record.headers, `ce_${name}`);
    if (header !== undefined || contentModeOf(record.headers) !== "structured") return header;
    try {
      envelope ??= JSON.parse(record.value?.toString("utf8") ?? "") as Record<string, unknown>;
    } catch {
      envelope = {};
    }
    const value = envelope?.[name];
    return typeof value === "string" ? value : undefined;
  };
}

/** The record's headers as the records we write carry them: with this span as their trace context. */
export function originOf(record: InboundRecord, trace: RecordTrace | undefined): Origin {
  return { headers: trace === undefined ? record.headers : { ...record.headers, ...trace.context() }, key: record.key };
}

/** Each attempt's CLIENT span, and its trace context on the request when the config allows it. */
export function attemptHooks(trace: RecordTrace, planned: PlannedDelivery): (attemptsMade: number) => AttemptHooks {
  return (attemptsMade) => {
    const { url } = targetOf(planned.subscription.target_url);
    const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
    const span = trace.attempt({ url: redactUrl(url.href), host: url.hostname, port }, attemptsMade);
    return { headers: planned.config.send_trace_context ? span.headers : undefined, settled: (outcome) => span.settled(outcome) };
  };
}
