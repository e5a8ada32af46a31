import { randomUUID } from "node:crypto";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { afterEach, describe, expect, inject, it } from "vitest";
import { startSidecar } from "../../src/app/sidecar.js";
import { createLogger } from "../../src/observability/logger.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { settingsFrom } from "../support/settings.js";

const brokers = inject("kafkaBrokers");
const kafka = new Kafka({ clientId: "ordering-test", brokers, logLevel: logLevel.NOTHING });
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Records of 4 keys, answered after a pseudo-random delay so concurrent work would finish out of order. */
async function run(ordering: "key" | "partition"): Promise<Receiver> {
  const id = randomUUID().slice(0, 8);
  const topic = `ordering-${id}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();

  const receiver = await startReceiver();
  cleanup.push(() => receiver.close());
  let n = 0;
  receiver.behave(() => ({ kind: "respond", status: 200, delayMs: ((n++ * 37) % 11) * 3 }));

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const count = 200;
  await producer.send({
    topic,
    messages: Array.from({ length: count }, (_, i) => ({
      key: `key-${i % 4}`,
      value: JSON.stringify({ key: `key-${i % 4}`, seq: i }),
      headers: { "x-tenant-id": "acme", "x-event-type": "E" },
    })),
  });
  await producer.disconnect();

  const sidecar = await startSidecar(
    settingsFrom({
      enabled: true,
      "shutdown-grace": "5s",
      http: { "allow-private-networks": true },
      retry: { topic: `${topic}.retry` },
      "dead-letter": { topic: `${topic}.dlq` },
      kafka: { brokers, topics: [topic], "group-id": topic, "from-beginning": true, ordering, "session-timeout": "10s" },
      server: { port: 0, host: "127.0.0.1" },
      configs: [{ "tenant-id": "acme", name: "main", subscriptions: [{ "event-type": "*", "target-url": receiver.url }] }],
    }),
    createLogger("silent"),
  );
  cleanup.push(() => sidecar.stop());
  await receiver.waitForRequests(count, 60_000);
  return receiver;
}

function sequencesByKey(receiver: Receiver): Map<string, number[]> {
  const byKey = new Map<string, number[]>();
  for (const request of receiver.requests) {
    const { key, seq } = JSON.parse(request.body.toString()) as { key: string; seq: number };
    byKey.set(key, [...(byKey.get(key) ?? []), seq]);
  }
  return byKey;
}

describe("ordering on the real broker", () => {
  it.each(["key", "partition"] as const)("ordering: %s delivers each key's records in offset order", async (ordering) => {
    const receiver = await run(ordering);
    const byKey = sequencesByKey(receiver);
    expect(byKey.size).toBe(4);
    for (const seqs of byKey.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });
});
