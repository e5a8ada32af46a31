// The publisher's rules with a fake producer behind its createProducer seam. The fake partitions
// through the partitioner the publisher hands it, as kafkajs does, and answers per request.
import {
  Kafka,
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  logLevel,
  Partitioners,
  type ICustomPartitioner,
  type Message,
  type ProducerBatch,
  type RecordMetadata,
} from "kafkajs";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createKafka } from "../../src/kafka/client.js";
import { DurablePublisher, type PublisherProducer } from "../../src/kafka/publisher.js";
import { hasCode } from "../../src/shared/errors.js";
import { settingsFrom } from "../support/settings.js";

interface Request {
  topic: string;
  partition: number;
  values: string[];
}

class FakeProducer implements PublisherProducer {
  readonly requests: Request[] = [];
  readonly written: Request[] = [];
  private readonly partitioner;

  constructor(
    createPartitioner: ICustomPartitioner,
    readonly partitionCounts: Map<string, number>,
    /** Throws to fail the request; returns false to skip a partition silently, as kafkajs does for one its metadata lacks. */
    private readonly answer: (request: Request) => boolean | undefined,
  ) {
    this.partitioner = createPartitioner();
  }

  connect = async () => undefined;
  disconnect = async () => undefined;

  sendBatch = async ({ topicMessages = [] }: ProducerBatch): Promise<RecordMetadata[]> => {
    await Promise.resolve();
    const acks: RecordMetadata[] = [];
    for (const { topic, messages } of topicMessages) {
      const partitionMetadata = Array.from({ length: this.partitionCounts.get(topic) ?? 1 }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
      }));
      const byPartition = new Map<number, Message[]>();
      for (const message of messages) {
        const partition = this.partitioner({ topic, partitionMetadata, message });
        byPartition.set(partition, [...(byPartition.get(partition) ?? []), message]);
      }
      for (const [partition, group] of byPartition) {
        const request = { topic, partition, values: group.map((m) => String(m.value)) };
        this.requests.push(request);
        if (this.answer(request) === false) continue;
        this.written.push(request);
        acks.push({ topicName: topic, partition, errorCode: 0, baseOffset: "0" });
      }
    }
    return acks;
  };

  writtenValues(topic: string): string[] {
    return this.written.filter((r) => r.topic === topic).flatMap((r) => r.values);
  }
}

// The publisher's retry backoff sleeps with node:timers/promises, which vi.useFakeTimers does not
// reach in an ES module; this is the same abortable sleep on the global timers, so a test's fake
// clock (or the real one) drives it.
vi.mock("node:timers/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:timers/promises")>();
  const sleep = <T>(ms?: number, value?: T, options?: { signal?: AbortSignal }): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(value as T);
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  return { ...actual, default: { ...actual, setTimeout: sleep }, setTimeout: sleep };
});

const protocolError = (type: string, retriable: boolean) =>
  new KafkaJSProtocolError(Object.assign(new Error(`broker said ${type}`), { type, code: 0, retriable }));
// What kafkajs rejects with once its own retries of a retriable error ran out.
const gaveUp = (cause: Error) => new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 1000 });
const connectionLost = () => gaveUp(new KafkaJSConnectionError("Connection error: ECONNREFUSED"));

const publishers: DurablePublisher[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(publishers.splice(0).map((p) => p.disconnect()));
});

function setup(answer: (request: Request) => boolean | undefined, partitionCounts: Record<string, number> = {}) {
  const logs: Record<string, unknown>[] = [];
  const refused: [string, string][] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  let producer: FakeProducer | undefined;
  const publisher = new DurablePublisher(new Kafka({ brokers: ["127.0.0.1:1"], logLevel: logLevel.NOTHING }), logger, {
    onRefused: (topic, reason) => refused.push([topic, reason]),
    createProducer: (createPartitioner) =>
      (producer = new FakeProducer(createPartitioner, new Map(Object.entries(partitionCounts)), answer)),
  });
  publishers.push(publisher);
  return { publisher, producer: producer as FakeProducer, logs, refused };
}

const record = (value: string, key: string | null = value) => ({ key, value, headers: { "callback-delivery-id": `d-${value}` } });
const settled = (p: Promise<unknown>) =>
  p.then(
    () => "acknowledged",
    (e: unknown) => e,
  );

describe("DurablePublisher", () => {
  it("refuses only the record Kafka will never take; the others of its request and after it are written once", async () => {
    // The topic takes record batches up to 1,000 bytes: the big record never fits, and the small
    // ones together do not either, so the publisher must split to find out which is at fault.
    const { publisher, producer, logs, refused } = setup(({ topic, values }) => {
      if (topic === "dlq" && values.join("").length > 1_000) throw protocolError("MESSAGE_TOO_LARGE", false);
      return undefined;
    });
    const small = Array.from({ length: 30 }, (_, i) => `small-${String(i).padStart(2, "0")}-${"s".repeat(50)}`);
    const big = `big-${"B".repeat(2_000)}`;
    const values = [...small.slice(0, 15), big, ...small.slice(15)];
    const outcomes = await Promise.all(values.map((v) => settled(publisher.publish("dlq", record(v)))));

    const bigOutcome = outcomes[values.indexOf(big)];
    expect(hasCode(bigOutcome, "HANDOFF_REFUSED")).toBe(true);
    expect(bigOutcome).toMatchObject({
      topic: "dlq",
      reason: "message_too_large",
      message: expect.stringContaining("MESSAGE_TOO_LARGE"),
    });
    expect((bigOutcome as Error).message).toContain("dlq");
    expect(outcomes.filter((o) => o === "acknowledged")).toHaveLength(small.length);
    expect(producer.writtenValues("dlq").sort()).toEqual([...small].sort());
    expect(refused).toEqual([["dlq", "message_too_large"]]);
    // The big one went out in a request with others, which is what made splitting necessary.
    expect(producer.requests.some((r) => r.values.includes(big) && r.values.length > 1)).toBe(true);
    const refusal = logs.find((l) => l.msg === "Kafka refused a write for good");
    expect(refusal).toMatchObject({ topic: "dlq", reason: "message_too_large", bytes: expect.any(Number) });
    expect(JSON.stringify(logs)).not.toContain("BBBB");
  });

  it("retries a failure Kafka may recover from, resending the same records to the same partition, until they are written", async () => {
    vi.useFakeTimers();
    let failures = 2;
    const { publisher, producer, refused } = setup(() => {
      if (failures-- > 0) throw connectionLost();
      return undefined;
    });
    let outcomes: unknown[] | undefined;
    void Promise.all(["a", "b", "c"].map((v) => settled(publisher.publish("retry", record(v, "same-key"))))).then((o) => (outcomes = o));
    // Both failed requests are sent again after the first backoff, 500 ms, and not before.
    await vi.advanceTimersByTimeAsync(499);
    expect(outcomes).toBeUndefined();
    expect(producer.written).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcomes).toEqual(["acknowledged", "acknowledged", "acknowledged"]);
    expect(producer.writtenValues("retry").sort()).toEqual(["a", "b", "c"]);
    const failed = producer.requests.filter((r) => !producer.written.includes(r));
    expect(failed).toHaveLength(2);
    for (const request of failed) expect(producer.written).toContainEqual(request);
    expect(refused).toEqual([]);
  });

  it("a topic Kafka refuses to authorize does not hold back another topic, and its writes are refused at once", async () => {
    const { publisher, producer, refused } = setup(({ topic }) => {
      // kafkajs wraps a non-retriable error met in its metadata step, keeping it as the cause.
      const denied = protocolError("TOPIC_AUTHORIZATION_FAILED", false);
      if (topic === "dlq") throw Object.assign(new KafkaJSNonRetriableError(denied), { cause: denied });
      return undefined;
    });
    const values = Array.from({ length: 10 }, (_, i) => `v${i}`);
    const dead = values.map((v) => settled(publisher.publish("dlq", record(v))));
    const retries = values.map((v) => settled(publisher.publish("retry", record(v))));
    expect(await Promise.all(retries)).toEqual(values.map(() => "acknowledged"));
    for (const outcome of await Promise.all(dead))
      expect(outcome).toMatchObject({ code: "HANDOFF_REFUSED", reason: "topic_authorization_failed" });
    expect(refused).toHaveLength(values.length);
    expect(producer.requests.filter((r) => r.topic === "dlq").length).toBeLessThan(values.length);
  });

  it("a topic whose writes keep failing holds back neither another topic nor its own healthy partitions", async () => {
    const { publisher, producer } = setup(
      ({ topic, partition }) => {
        if (topic === "dlq" || partition === 0) throw connectionLost();
        return undefined;
      },
      { retry: 4 },
    );
    const stuck = settled(publisher.publish("dlq", record("dead-letter")));
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    const outcomes = keys.map((k) => ({ key: k, done: false, promise: publisher.publish("retry", record(k)) }));
    for (const o of outcomes)
      void o.promise.then(
        () => (o.done = true),
        () => undefined,
      );
    const partitionOf = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    const healthy = keys.filter((key) => partitionOf({ topic: "retry", partitionMetadata, message: { key, value: key } }) !== 0);
    expect(healthy.length).toBeGreaterThan(0);
    expect(healthy.length).toBeLessThan(keys.length);
    await expect.poll(() => outcomes.filter((o) => o.done).map((o) => o.key)).toEqual(healthy);
    expect(producer.writtenValues("retry").sort()).toEqual([...healthy].sort());
    // Shutting down tells the ones still waiting that their write was abandoned.
    await publisher.disconnect();
    expect(await stuck).toMatchObject({ code: "HANDOFF_ABANDONED" });
    for (const o of outcomes.filter((x) => !x.done)) expect(await settled(o.promise)).toMatchObject({ code: "HANDOFF_ABANDONED" });
  });

  it("an aborted write rejects with HANDOFF_ABANDONED, and one still queued is never sent", async () => {
    vi.useFakeTimers();
    const { publisher, producer } = setup(() => {
      throw connectionLost();
    });
    const inFlight = [settled(publisher.publish("retry", record("first"))), settled(publisher.publish("retry", record("second")))];
    await expect.poll(() => producer.requests.length).toBe(2);
    const caller = new AbortController();
    const queued = settled(publisher.publish("retry", record("queued"), caller.signal));
    const reason = new Error("shutting down");
    caller.abort(reason);
    const outcome = await queued;
    expect(hasCode(outcome, "HANDOFF_ABANDONED")).toBe(true);
    expect((outcome as Error).cause).toBe(reason);
    expect(hasCode(await settled(publisher.publish("retry", record("late"), caller.signal)), "HANDOFF_ABANDONED")).toBe(true);
    // Past the first backoff (500 ms): the failed writes were sent again, and "queued" was not.
    await vi.advanceTimersByTimeAsync(700);
    expect(producer.requests.length).toBeGreaterThan(2);
    expect(producer.requests.flatMap((r) => r.values)).not.toContain("queued");
    await publisher.disconnect();
    for (const o of await Promise.all(inFlight)) expect(hasCode(o, "HANDOFF_ABANDONED")).toBe(true);
  });

  it("a record sent to a partition kafkajs no longer knows is not taken as written: its partition is chosen again", async () => {
    const { publisher, producer } = setup(({ partition }) => partition < (producer.partitionCounts.get("retry") ?? 1), { retry: 3 });
    await publisher.publish("retry", record("learn-the-partitions"));
    // The topic is recreated with one partition: kafkajs skips the records of the others silently.
    producer.partitionCounts.set("retry", 1);
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => publisher.publish("retry", record(k))));
    expect(
      producer
        .writtenValues("retry")
        .filter((v) => keys.includes(v))
        .sort(),
    ).toEqual([...keys].sort());
    expect(producer.written.filter((r) => r.values.some((v) => keys.includes(v))).every((r) => r.partition === 0)).toBe(true);
  });

  it("its idempotent producer starts without kafkajs' warning about limited retries (ours resend unchanged)", () => {
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
    publishers.push(new DurablePublisher(createKafka(settingsFrom({ kafka: { brokers: ["127.0.0.1:1"] } }).kafka, logger), logger));
    expect(logs).toEqual([]);
  });
});
