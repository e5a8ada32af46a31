import type { RecordHeaders } from "./record-decoder.js";

/** One consumed record, in the shape the pipeline reads (no kafkajs types past this point). */
export interface InboundRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
  /** Kafka's record timestamp, epoch milliseconds as text. */
  timestamp: string;
}

/**
 * What a record's work may watch. `stopping`: the sidecar stops or the partition moves to another
 * member; hand work over durably instead of waiting. `deadline`: the grace is over; give up, and
 * the record stays uncommitted for its next owner.
 */
export interface RecordSignals {
  stopping: AbortSignal;
  deadline: AbortSignal;
  /**
   * Lets the record's in-flight slot go while `wait` is pending (a delivery queued behind a full
   * host): waiting for one host must not keep other records, and other hosts, from starting.
   */
  lend?: <T>(wait: Promise<T>) => Promise<T>;
}

export type Work = (signals: RecordSignals) => Promise<RecordEnd>;

/**
 * How a record's work ended, as far as its offset is concerned.
 * - done: every delivery is final or handed to a durable topic; the offset may pass it.
 * - abandoned: only when `stopping` or `deadline` aborted; the record stays uncommitted.
 * - later: nothing to do before `at`; the record waits without holding an in-flight slot, then
 *   `resume` runs. If the member must let go of it first, `handOver` makes it durable elsewhere.
 */
export type RecordEnd = { kind: "done" } | { kind: "abandoned" } | { kind: "later"; at: number; resume: Work; handOver: Work };

/** The consumer's side of the pipeline: what to do with a record, and when it may start. */
export interface RecordProcessor {
  /** Epoch ms before which the record must not start (a retry not yet due); 0 for now. */
  startAt(record: InboundRecord): number;
  /** Never rejects: every failure ends as a dead letter or an escape (see pipeline/). */
  process(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd>;
  /** For a record waiting to start when the member lets go of it: make it durable elsewhere. */
  handOver(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd>;
}
