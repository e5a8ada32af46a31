/**
 * The tracing seam the pipeline calls. It imports nothing from OpenTelemetry: with tracing off
 * (the default) `startTracing` returns undefined, the SDK is never loaded, and the pipeline's
 * `trace?.` calls cost nothing. With it on, otel-tracing.ts is imported and started.
 */
import type { Logger } from "pino";
import type { AttemptOutcome } from "../domain/outcomes.js";

/** Reads a W3C trace context header (`traceparent`, `tracestate`) from wherever a record carries it. */
export type TraceCarrier = (name: "traceparent" | "tracestate") => string | undefined;

/** A record's coordinates, as its consumer span names them. */
export interface TracedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
}

export interface Tracing {
  /**
   * A CONSUMER span `process <topic>` for one record, started at `startedAt`, the child of the
   * context `carrier` holds (a producer's, or ours on a retry or dead-letter record) or a new trace.
   */
  record(record: TracedRecord, carrier: TraceCarrier, startedAt: number): RecordTrace;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

export interface RecordTrace {
  /** Runs `work` with this span current, so every log line written meanwhile names it. */
  run<T>(work: () => Promise<T>): Promise<T>;
  /** This span as W3C headers, carried by the retry and dead-letter records we write. */
  context(): Record<string, string>;
  /** Something that happened to the record: a breaker refusal, a hand-over, a dead letter. */
  event(name: string, attributes?: Record<string, string | number>): void;
  /** A CLIENT span for one HTTP attempt, child of this one. */
  attempt(target: AttemptTarget, resendCount: number): AttemptTrace;
  /** A dead letter: an event naming the reason, and the span marked as an error. */
  deadLettered(reason: string): void;
  end(): void;
}

/** The target as spans may show it: `url` redacted of capability parts. */
export interface AttemptTarget {
  url: string;
  host: string;
  port: number;
}

export interface AttemptTrace {
  /** `traceparent` (and `tracestate`) naming this attempt, for a receiver allowed to see them. */
  readonly headers: Record<string, string>;
  settled(outcome: AttemptOutcome): void;
}

export interface TracingOptions {
  serviceVersion: string;
  consumerGroup: string;
  protocol: "http/protobuf" | "http/json";
  logger: Logger;
  /** Told which span is current whenever a log line is written (logger.ts's mixin). */
  setLogContext: (ids: () => Record<string, string> | undefined) => void;
}

/** Starts OpenTelemetry when `enabled`; otherwise loads nothing and returns undefined. */
export async function startTracing(enabled: boolean, options: TracingOptions): Promise<Tracing | undefined> {
  if (!enabled) return undefined;
  const { createOtelTracing } = await import("./otel-tracing.js");
  return createOtelTracing(options);
}
