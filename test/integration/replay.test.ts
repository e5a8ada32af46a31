/**
 * The dead-letter reader behind `replay` (src/kafka/topic-reader.ts) on the real broker: it reads up
 * to the end as of its start, in bounded chunks, every record exactly once, and no consumer exists
 * while the caller works on a chunk.
 */
import type { Admin, Kafka, Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { readTopicInChunks, readTopicToEnd, type ReadRecord } from "../../src/kafka/topic-reader.js";
import { createTopic, testKafka, testProducer, unique } from "../support/traffic.js";

const brokers = inject("kafkaBrokers");
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  kafka = testKafka(brokers, "replay-reader-test");
  admin = kafka.admin();
  producer = testProducer(kafka);
  await admin.connect();
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
});

async function groupsWithPrefix(prefix: string): Promise<{ groupId: string; state: string; members: number }[]> {
  const { groups } = await admin.listGroups();
  const ours = groups.filter((g) => g.groupId.startsWith(prefix)).map((g) => g.groupId);
  if (ours.length === 0) return [];
  return (await admin.describeGroups(ours)).groups.map((g) => ({ groupId: g.groupId, state: g.state, members: g.members.length }));
}

describe("readTopicInChunks (real broker)", () => {
  it("hands every record below the start's end to select exactly once, in chunks within the limits, with no consumer while a chunk is worked on", async () => {
    const topic = await createTopic(admin, "reader", 3);
    const n = 300;
    for (let start = 0; start < n; start += 100) {
      await producer.send({
        topic: topic.name,
        acks: -1,
        messages: Array.from({ length: 100 }, (_, j) => ({ value: String(start + j), partition: (start + j) % 3 })),
      });
    }
    const prefix = unique("reader-group");
    const seen: string[] = [];
    const chunkSizes: number[] = [];
    const statesBetweenChunks: string[] = [];
    const started = performance.now();
    const reader = readTopicInChunks(kafka, topic.name, {
      groupPrefix: prefix,
      limits: { records: 25 },
      // Every record is seen; every other one is kept.
      select: ({ partition, message }: ReadRecord) => {
        seen.push(`${partition}:${message.offset}`);
        const i = Number(message.value?.toString());
        return i % 2 === 0 ? i : undefined;
      },
    });
    const kept: number[] = [];
    for await (const chunk of reader) {
      chunkSizes.push(chunk.length);
      kept.push(...chunk);
      for (const g of await groupsWithPrefix(prefix)) statesBetweenChunks.push(`${g.state}/${g.members}`);
      if (chunkSizes.length === 1) {
        // Written after the read started: past its end, never read.
        await producer.send({ topic: topic.name, acks: -1, messages: [0, 1, 2].map((p) => ({ value: String(1_000 + p), partition: p })) });
      }
    }
    console.log(
      `read ${seen.length} records in ${chunkSizes.length} chunks (${chunkSizes.join(",")}) in ${Math.round(performance.now() - started)} ms`,
    );

    expect(seen).toHaveLength(n);
    expect(new Set(seen).size).toBe(n);
    expect(kept.sort((a, b) => a - b)).toEqual(Array.from({ length: n / 2 }, (_, i) => i * 2));
    expect(chunkSizes.every((s) => s > 0 && s <= 25)).toBe(true);
    expect(chunkSizes.length).toBe(6);
    // Offsets in order within each partition.
    for (const p of [0, 1, 2]) {
      const offsets = seen.filter((s) => s.startsWith(`${p}:`)).map((s) => Number(s.split(":")[1]));
      expect(offsets).toEqual(Array.from({ length: n / 3 }, (_, i) => i));
    }
    // Between chunks the throwaway group has no member: nothing holds a session the caller's work could break.
    expect(statesBetweenChunks.length).toBeGreaterThan(0);
    for (const s of statesBetweenChunks) expect(s).toBe("Empty/0");
    // ... and it is deleted at the end.
    expect(await groupsWithPrefix(prefix)).toEqual([]);
  });

  it("bounds a chunk by bytes too", async () => {
    const topic = await createTopic(admin, "reader-bytes", 1);
    await producer.send({
      topic: topic.name,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => ({ value: `${i}`.padEnd(10_000, "x") })),
    });
    const sizes: number[] = [];
    for await (const chunk of readTopicInChunks(kafka, topic.name, {
      groupPrefix: unique("reader-bytes"),
      limits: { bytes: 25_000 },
      select: (r) => r,
    })) {
      sizes.push(chunk.length);
    }
    expect(sizes).toEqual([3, 3, 3, 1]);
  });

  it("an empty topic yields nothing and leaves no group behind; readTopicToEnd still counts", async () => {
    const topic = await createTopic(admin, "reader-empty", 2);
    const prefix = unique("reader-empty");
    const chunks: unknown[] = [];
    for await (const chunk of readTopicInChunks(kafka, topic.name, { groupPrefix: prefix, select: (r) => r })) chunks.push(chunk);
    expect(chunks).toEqual([]);
    expect(await groupsWithPrefix(prefix)).toEqual([]);

    await producer.send({
      topic: topic.name,
      acks: -1,
      messages: [
        { value: "a", partition: 0 },
        { value: "b", partition: 1 },
      ],
    });
    const values: string[] = [];
    expect(
      await readTopicToEnd(kafka, topic.name, async ({ message }) => void values.push(String(message.value)), unique("reader-empty")),
    ).toBe(2);
    expect(values.sort()).toEqual(["a", "b"]);
  });
});
