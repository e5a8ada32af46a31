// The publisher against the real broker (Kafka 4.4, KRaft, one node): a record a topic will never
// take is refused alone and fast, while the writes beside it land once each, from an idempotent producer.
import { randomUUID } from "node:crypto";
import { Kafka, logLevel, type Admin, type Consumer } from "kafkajs";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DurablePublisher } from "../../src/kafka/publisher.js";
import { hasCode } from "../../src/shared/errors.js";

const brokers = inject("kafkaBrokers");
const kafka = new Kafka({ brokers: brokers ?? [], clientId: "publisher-test", logLevel: logLevel.NOTHING });
const unique = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;
const logger = pino({ level: "silent" });

let admin: Admin;
const consumers: Consumer[] = [];
const publishers: DurablePublisher[] = [];

beforeAll(async () => {
  if (!brokers) throw new Error("no kafkaBrokers provided: is test/support/kafka-global-setup.ts registered?");
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await Promise.allSettled([...consumers.map((c) => c.disconnect()), ...publishers.map((p) => p.disconnect())]);
  await admin?.disconnect();
});

async function connectedPublisher(onRefused?: (topic: string, reason: string) => void): Promise<DurablePublisher> {
  const publisher = new DurablePublisher(kafka, logger, { onRefused });
  publishers.push(publisher);
  await publisher.connect();
  return publisher;
}

const settle = (p: Promise<void>) =>
  p.then(
    () => "acknowledged" as const,
    (e: unknown) => e,
  );

async function recordCount(topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

/** Every record of `topics` with the producer id of its batch (-1 when the producer was not idempotent). */
async function readAll(topics: string[], expected: number): Promise<{ topic: string; value: string; producerId: string }[]> {
  const got: { topic: string; value: string; producerId: string }[] = [];
  const consumer = kafka.consumer({ groupId: unique("publisher-read"), maxWaitTimeInMs: 250 });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      // kafkajs keeps the record batch's header on each message, though its types do not say so.
      const producerId = (message as unknown as { batchContext: { producerId: string } }).batchContext.producerId;
      got.push({ topic, value: String(message.value), producerId });
    },
  });
  await expect.poll(() => got.length, { timeout: 30_000 }).toBe(expected);
  await consumer.disconnect();
  return got;
}

describe("DurablePublisher on the real broker", () => {
  it("a record over the topic's max.message.bytes is refused alone and within seconds; the small ones beside it are written once", async () => {
    const limited = unique("publisher-limited");
    const other = unique("publisher-other");
    await admin.createTopics({
      topics: [
        { topic: limited, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: "max.message.bytes", value: "2048" }] },
        { topic: other, numPartitions: 3, replicationFactor: 1 },
      ],
      waitForLeaders: true,
    });
    const refused: [string, string][] = [];
    const publisher = await connectedPublisher((topic, reason) => refused.push([topic, reason]));

    // 40 small records of ~300 bytes: a partition's share of them is over 2,048 bytes in one batch,
    // so the publisher has to split them too, not only set the big one apart.
    const small = Array.from({ length: 40 }, (_, i) => `small-${i}-${"s".repeat(300)}`);
    const big = `big-${"B".repeat(5_000)}`;
    const started = Date.now();
    const bigWrite = settle(publisher.publish(limited, { key: "big", value: big, headers: {} })).then((outcome) => ({
      outcome,
      ms: Date.now() - started,
    }));
    const writes = [
      ...small.map((value, i) => settle(publisher.publish(limited, { key: `k${i}`, value, headers: { "callback-delivery-id": `d${i}` } }))),
      ...small.map((value, i) => settle(publisher.publish(other, { key: `k${i}`, value, headers: {} }))),
    ];

    const { outcome, ms } = await bigWrite;
    expect(hasCode(outcome, "HANDOFF_REFUSED")).toBe(true);
    expect(outcome).toMatchObject({ topic: limited, reason: "message_too_large" });
    expect((outcome as Error).message).toContain(limited);
    expect((outcome as Error).message).toContain("MESSAGE_TOO_LARGE");
    expect((outcome as Error).message).not.toContain("BBB");
    expect(ms).toBeLessThan(10_000);
    expect(await Promise.all(writes)).toEqual(writes.map(() => "acknowledged"));
    expect(refused).toEqual([[limited, "message_too_large"]]);

    // Exactly the small records, each once: nothing acknowledged was sent a second time.
    expect(await recordCount(limited)).toBe(small.length);
    expect(await recordCount(other)).toBe(small.length);
    const read = await readAll([limited, other], 2 * small.length);
    expect(
      read
        .filter((r) => r.topic === limited)
        .map((r) => r.value)
        .sort(),
    ).toEqual([...small].sort());
    expect(
      read
        .filter((r) => r.topic === other)
        .map((r) => r.value)
        .sort(),
    ).toEqual([...small].sort());
    // Written by an idempotent producer: the broker gave it an id (InitProducerId works on KRaft).
    expect(read.every((r) => r.producerId !== "-1")).toBe(true);
  });

  it("writes to a topic that does not exist are refused as a topic, while another topic is written", async () => {
    const missing = unique("publisher-missing");
    const present = unique("publisher-present");
    await admin.createTopics({ topics: [{ topic: present, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    const refused: [string, string][] = [];
    const publisher = await connectedPublisher((topic, reason) => refused.push([topic, reason]));

    const lost = Array.from({ length: 5 }, (_, i) => settle(publisher.publish(missing, { key: `m${i}`, value: `m${i}`, headers: {} })));
    const kept = Array.from({ length: 5 }, (_, i) => settle(publisher.publish(present, { key: `p${i}`, value: `p${i}`, headers: {} })));

    expect(await Promise.all(kept)).toEqual(kept.map(() => "acknowledged"));
    for (const outcome of await Promise.all(lost))
      expect(outcome).toMatchObject({ code: "HANDOFF_REFUSED", reason: "unknown_topic_or_partition" });
    expect(refused).toEqual(lost.map(() => [missing, "unknown_topic_or_partition"]));
    expect(await admin.listTopics()).not.toContain(missing);
    expect(await recordCount(present)).toBe(5);
  });
});
