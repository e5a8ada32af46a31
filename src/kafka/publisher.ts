import { Partitioners, type Kafka, type Producer, type TopicMessages } from "kafkajs";
import type { Logger } from "pino";
import { abortableSleep } from "../delivery/dispatcher.js";
import type { OutboundRecord } from "./handoff-records.js";

interface Pending {
  topic: string;
  record: OutboundRecord;
  bytes: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
}

// One produce request carries many records; the broker limits a record batch (message.max.bytes,
// ~1 MB by default), so a request stays under that unless a single record is larger on its own.
const MAX_BATCH_RECORDS = 500;
const MAX_BATCH_BYTES = 768 * 1024;

function sizeOf(record: OutboundRecord): number {
  let bytes = Buffer.byteLength(record.value) + (record.key === null ? 0 : Buffer.byteLength(record.key));
  for (const [name, value] of Object.entries(record.headers)) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  return bytes;
}

/**
 * Writes retry and dead-letter records, acknowledged by all in-sync replicas. Writes that arrive
 * while one is in flight are sent together in the next request, so a burst of hand-offs (a dead
 * endpoint subscribed to every event) costs a few requests, not one round trip each. A write
 * Kafka refuses is retried until it succeeds or its caller gives up (shutdown): the record that
 * caused it is not done until then, so its offset does not advance and nothing is lost.
 */
export class DurablePublisher {
  private readonly producer: Producer;
  private readonly queue: Pending[] = [];
  private flushing = false;

  constructor(
    kafka: Kafka,
    private readonly logger: Logger,
  ) {
    this.producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 5 }, createPartitioner: Partitioners.DefaultPartitioner });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  /** Resolves once Kafka acknowledged; rejects only when `signal` aborts first. */
  publish(topic: string, record: OutboundRecord, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      // The signal lives as long as the consumer: its listener must go when the write settles.
      const onAbort = () => {
        const i = this.queue.indexOf(pending);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal?.reason);
      };
      const settle = (fn: () => void) => () => {
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const pending: Pending = { topic, record, bytes: sizeOf(record), resolve: settle(resolve), reject: (e) => settle(() => reject(e))(), signal };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(pending);
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (let failures = 0; this.queue.length > 0; ) {
        const batch = this.takeBatch();
        try {
          await this.producer.sendBatch({ acks: -1, topicMessages: byTopic(batch) });
          failures = 0;
          for (const p of batch) p.resolve();
        } catch (error) {
          failures += 1;
          this.logger.error({ topics: [...new Set(batch.map((p) => p.topic))], records: batch.length, attempt: failures, err: (error as Error).message }, "write to Kafka refused; will retry");
          // Put back what is still wanted, in order; a caller that gave up was already told.
          this.queue.unshift(...batch.filter((p) => !p.signal?.aborted));
          await abortableSleep(Math.min(500 * 2 ** (failures - 1), 10_000));
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && batch.length < MAX_BATCH_RECORDS) {
      const next = this.queue[0] as Pending;
      if (batch.length > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
      batch.push(this.queue.shift() as Pending);
      bytes += next.bytes;
    }
    return batch;
  }
}

function byTopic(batch: Pending[]): TopicMessages[] {
  const topics = new Map<string, OutboundRecord[]>();
  for (const p of batch) {
    const messages = topics.get(p.topic);
    if (messages) messages.push(p.record);
    else topics.set(p.topic, [p.record]);
  }
  return [...topics].map(([topic, messages]) => ({ topic, messages }));
}

