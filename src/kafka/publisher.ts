import { setTimeout as sleep } from "node:timers/promises";
import {
  Partitioners,
  type ICustomPartitioner,
  type Kafka,
  type Message,
  type PartitionMetadata,
  type Producer,
  type RecordMetadata,
} from "kafkajs";
import type { Logger } from "pino";
import { SidecarError } from "../shared/errors.js";
import type { OutboundRecord } from "./handoff-records.js";

/*
 * Kafka's answers that no retry changes. A record-level one is about the record batch of one
 * partition, so a batch that gets one is split until only the records at fault are refused; a
 * topic-level one is the same for every record of the topic. UNKNOWN_TOPIC_OR_PARTITION is
 * retriable for kafkajs (a topic just created), so it only reaches us once kafkajs has retried it
 * for seconds; topics are not created on write, so by then it is a missing topic.
 * Anything else (a lost broker, NOT_ENOUGH_REPLICAS, a cluster-wide authorization error) is not
 * the record's fault and is retried: refusing would drop every hand-off of a broken deployment.
 */
const RECORD_REFUSALS = ["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "INVALID_TIMESTAMP"] as const;
const TOPIC_REFUSALS = ["TOPIC_AUTHORIZATION_FAILED", "UNKNOWN_TOPIC_OR_PARTITION", "INVALID_TOPIC_EXCEPTION"] as const;
type KafkaRefusal = (typeof RECORD_REFUSALS)[number] | (typeof TOPIC_REFUSALS)[number];

/** The `reason` label of callbacks_handoff_refused_total: Kafka's error type in lower case. */
export type RefusalReason = Lowercase<KafkaRefusal>;

/** Kafka will never take this record; the caller decides what its loss means. */
export class HandoffRefusedError extends SidecarError {
  readonly reason: RefusalReason;

  constructor(
    readonly topic: string,
    kafkaError: KafkaRefusal,
  ) {
    super("HANDOFF_REFUSED", `Kafka refused a write to ${topic} for good (${kafkaError})`);
    this.reason = kafkaError.toLowerCase() as RefusalReason;
  }
}

export type PublisherProducer = Pick<Producer, "connect" | "disconnect" | "sendBatch">;

export interface PublisherOptions {
  /** Told of every record Kafka refused for good; callbacks_handoff_refused_total is wired here. */
  onRefused?: (topic: string, reason: RefusalReason) => void;
  /** Builds the producer around our partitioner; tests pass a fake that calls it as kafkajs does. */
  createProducer?: (createPartitioner: ICustomPartitioner) => PublisherProducer;
}

interface Pending {
  topic: string;
  /** `partition` is set once and kept, so every send of the record goes to the same partition. */
  message: Message;
  bytes: number;
  lane: Lane | undefined;
  resolve: () => void;
  reject: (error: SidecarError) => void;
}

/** The writes to one partition, sent one request at a time; `partition` is unset until the topic's partitions are known. */
interface Lane {
  topic: string;
  partition: number | undefined;
  queue: Pending[];
  busy: boolean;
}

type Outcome = "acknowledged" | "stopped" | "misrouted" | { scope: "record" | "topic"; error: KafkaRefusal };

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
 * Writes retry and dead-letter records, acknowledged by all in-sync replicas, each record once.
 *
 * Every request carries the records of one partition. kafkajs' idempotent producer numbers the
 * batches of each partition; when a request fails it takes back the numbers of every partition in
 * it, even of those the broker wrote. The next write to such a partition then reuses a number the
 * broker has already seen: it is acknowledged as a duplicate and silently dropped (shown on Kafka
 * 4.4). With one partition per request a refused request wrote nothing, and a request that may
 * have been written (a timeout) is sent again unchanged, which the broker deduplicates.
 *
 * Writes that arrive while a partition's request is in flight go in its next request, so a burst
 * of hand-offs costs a few requests per partition, not one round trip each. A failure Kafka may
 * recover from is retried with backoff for as long as it lasts, holding only that partition; a
 * refusal no retry changes rejects just the records it is about (see RECORD_REFUSALS).
 */
export class DurablePublisher {
  private readonly producer: PublisherProducer;
  private readonly choosePartition = Partitioners.DefaultPartitioner();
  /** The partitions of each topic as kafkajs last saw them; absent until its first write. */
  private readonly partitionsOf = new Map<string, PartitionMetadata[]>();
  private readonly lanes = new Map<string, Lane>();
  private readonly unsettled = new Set<Pending>();
  private readonly stopping = new AbortController();
  private readonly onRefused: (topic: string, reason: RefusalReason) => void;

  constructor(
    kafka: Kafka,
    private readonly logger: Logger,
    options: PublisherOptions = {},
  ) {
    this.onRefused = options.onRefused ?? (() => undefined);
    const createPartitioner: ICustomPartitioner = () => (args) => {
      const known = this.partitionsOf.has(args.topic);
      this.partitionsOf.set(args.topic, args.partitionMetadata);
      if (!known) queueMicrotask(() => this.routeWaiting(args.topic));
      // kafkajs asks again on each of its retries; round-robin must not move a record that may be written already.
      args.message.partition ??= this.choosePartition(args);
      return args.message.partition;
    };
    // Idempotence is what lets a request that may have been written be sent again. kafkajs keeps
    // one produce request per broker in flight for it; our own retries resend unchanged, so its
    // finite retries do not weaken the guarantee.
    const create =
      options.createProducer ??
      ((partitioner) =>
        kafka.producer({ idempotent: true, allowAutoTopicCreation: false, retry: { retries: 5 }, createPartitioner: partitioner }));
    this.producer = create(createPartitioner);
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /** Rejects every write not yet acknowledged with HANDOFF_ABANDONED and closes the producer. */
  async disconnect(): Promise<void> {
    this.stopping.abort();
    for (const pending of [...this.unsettled]) pending.reject(abandoned(pending.topic, this.stopping.signal.reason));
    await this.producer.disconnect();
  }

  /**
   * Resolves once Kafka acknowledged the record. Rejects with HANDOFF_REFUSED when Kafka will never
   * take it, or HANDOFF_ABANDONED when `signal` aborts first (a record already sent may still land).
   */
  publish(topic: string, record: OutboundRecord, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted || this.stopping.signal.aborted) return reject(abandoned(topic, signal?.reason ?? this.stopping.signal.reason));
      // The signal lives as long as the consumer: its listener must go when the write settles.
      // A record already in a request stays in it: resending that request changed would reuse
      // its sequence numbers (see the class comment).
      const onAbort = () => {
        const queue = pending.lane?.queue;
        const i = queue?.indexOf(pending) ?? -1;
        if (i >= 0) queue?.splice(i, 1);
        pending.reject(abandoned(topic, signal?.reason));
      };
      const settle = (fn: () => void) => {
        if (!this.unsettled.delete(pending)) return;
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const pending: Pending = {
        topic,
        message: { key: record.key, value: record.value, headers: record.headers },
        bytes: sizeOf(record),
        lane: undefined,
        resolve: () => settle(resolve),
        reject: (error) => settle(() => reject(error)),
      };
      this.unsettled.add(pending);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.enqueue(pending);
    });
  }

  private enqueue(pending: Pending): void {
    const partitions = this.partitionsOf.get(pending.topic);
    if (pending.message.partition === undefined && partitions) {
      pending.message.partition = this.choosePartition({ topic: pending.topic, partitionMetadata: partitions, message: pending.message });
    }
    const lane = this.laneOf(pending.topic, pending.message.partition);
    pending.lane = lane;
    lane.queue.push(pending);
    void this.drain(lane);
  }

  /** Moves the writes that waited for the topic's partitions to the lanes of their partitions. */
  private routeWaiting(topic: string): void {
    for (const pending of this.lanes.get(laneKey(topic, undefined))?.queue.splice(0) ?? []) this.enqueue(pending);
  }

  private laneOf(topic: string, partition: number | undefined): Lane {
    let lane = this.lanes.get(laneKey(topic, partition));
    if (!lane) {
      lane = { topic, partition, queue: [], busy: false };
      this.lanes.set(laneKey(topic, partition), lane);
    }
    return lane;
  }

  private async drain(lane: Lane): Promise<void> {
    if (lane.busy) return;
    lane.busy = true;
    try {
      while (lane.queue.length > 0 && !this.stopping.signal.aborted) {
        // Until kafkajs has shown us the topic's partitions, a request of one record is the only
        // one sure to touch a single partition.
        await this.write(lane, lane.partition === undefined ? lane.queue.splice(0, 1) : takeBatch(lane.queue));
      }
    } finally {
      lane.busy = false;
    }
  }

  /** Settles every record of `batch`: acknowledged, refused, or moved to the partition it now belongs to. */
  private async write(lane: Lane, batch: Pending[]): Promise<void> {
    const outcome = await this.send(lane, batch);
    if (outcome === "acknowledged") {
      for (const pending of batch) pending.resolve();
    } else if (outcome === "stopped") {
      for (const pending of batch) pending.reject(abandoned(lane.topic, this.stopping.signal.reason));
    } else if (outcome === "misrouted") {
      for (const pending of batch) {
        delete pending.message.partition;
        this.enqueue(pending);
      }
    } else if (outcome.scope === "topic") {
      // What is still queued for this partition would get the same answer.
      for (const pending of [...batch, ...lane.queue.splice(0)]) this.refuse(pending, outcome.error);
    } else if (batch.length === 1) {
      this.refuse(batch[0] as Pending, outcome.error);
    } else {
      const half = Math.ceil(batch.length / 2);
      await this.write(lane, batch.slice(0, half));
      await this.write(lane, batch.slice(half));
    }
  }

  /** Sends `batch` until Kafka acknowledges or refuses it; a failure it may recover from is retried unchanged. */
  private async send(lane: Lane, batch: Pending[]): Promise<Outcome> {
    for (let failures = 0; !this.stopping.signal.aborted;) {
      let acks: RecordMetadata[];
      try {
        acks = await this.producer.sendBatch({ acks: -1, topicMessages: [{ topic: lane.topic, messages: batch.map((p) => p.message) }] });
      } catch (error) {
        const refusal = refusalOf(error);
        if (refusal) return refusal;
        if (this.stopping.signal.aborted) break;
        failures += 1;
        this.logger.error(
          {
            topic: lane.topic,
            partition: lane.partition ?? batch[0]?.message.partition,
            records: batch.length,
            attempt: failures,
            err: (error as Error).message,
          },
          "write to Kafka failed; will retry",
        );
        await sleep(Math.min(500 * 2 ** (failures - 1), 10_000), undefined, { signal: this.stopping.signal }).catch(() => undefined);
        continue;
      }
      // kafkajs sends nothing, and says nothing, for a partition its metadata no longer has (the
      // topic was recreated with fewer partitions).
      const written = batch.every((p) => acks.some((a) => a.topicName === lane.topic && a.partition === p.message.partition));
      if (written) return "acknowledged";
      this.partitionsOf.delete(lane.topic);
      this.logger.warn(
        { topic: lane.topic, partition: lane.partition, records: batch.length },
        "partition no longer in Kafka's metadata; choosing again",
      );
      return "misrouted";
    }
    return "stopped";
  }

  private refuse(pending: Pending, kafkaError: KafkaRefusal): void {
    const error = new HandoffRefusedError(pending.topic, kafkaError);
    this.logger.error(
      { topic: pending.topic, partition: pending.message.partition, bytes: pending.bytes, reason: error.reason },
      "Kafka refused a write for good",
    );
    this.onRefused(pending.topic, error.reason);
    pending.reject(error);
  }
}

const laneKey = (topic: string, partition: number | undefined) => `${partition ?? "?"}:${topic}`;

function takeBatch(queue: Pending[]): Pending[] {
  const batch: Pending[] = [];
  let bytes = 0;
  while (queue.length > 0 && batch.length < MAX_BATCH_RECORDS) {
    const next = queue[0] as Pending;
    if (batch.length > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
    batch.push(queue.shift() as Pending);
    bytes += next.bytes;
  }
  return batch;
}

function abandoned(topic: string, reason: unknown): SidecarError {
  return new SidecarError("HANDOFF_ABANDONED", `write to ${topic} abandoned before Kafka acknowledged it`, { cause: reason });
}

/** Kafka's error type behind a kafkajs error, if it is one no retry changes. kafkajs wraps it in `cause` when it gave up. */
function refusalOf(error: unknown): { scope: "record" | "topic"; error: KafkaRefusal } | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type !== "string") continue;
    if ((RECORD_REFUSALS as readonly string[]).includes(type)) return { scope: "record", error: type as KafkaRefusal };
    if ((TOPIC_REFUSALS as readonly string[]).includes(type)) return { scope: "topic", error: type as KafkaRefusal };
    return undefined;
  }
  return undefined;
}
