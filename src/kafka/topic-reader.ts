import { randomUUID } from "node:crypto";
import type { Kafka, KafkaMessage } from "kafkajs";

export interface ReadRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Reads a topic from its beginning up to where it ended when the read started, then stops. Uses a
 * throwaway consumer group (deleted afterwards), so it commits nothing anyone else relies on.
 */
export async function readTopicToEnd(kafka: Kafka, topic: string, onRecord: (record: ReadRecord) => Promise<void>, groupPrefix: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${groupPrefix}.${randomUUID()}`;
  const consumer = kafka.consumer({ groupId });
  try {
    const ends = new Map<number, bigint>();
    for (const p of await admin.fetchTopicOffsets(topic)) {
      if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high));
    }
    if (ends.size === 0) return 0;
    let count = 0;
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const remaining = new Set(ends.keys());
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const end = ends.get(partition);
            if (end === undefined || BigInt(message.offset) >= end) return;
            await onRecord({ topic, partition, message });
            count += 1;
            if (BigInt(message.offset) + 1n >= end) {
              remaining.delete(partition);
              if (remaining.size === 0) resolve();
            }
          },
        })
        .catch(reject);
    });
    return count;
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
