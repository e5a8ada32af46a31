// The Kafka ceiling (a child process of scripts/bench.mjs): a bare kafkajs consumer, eachBatch, no
// HTTP, reading the topic from the beginning until `records` messages have arrived. It reports the
// times of its first and last message to the parent over IPC.
import { Kafka, logLevel } from "kafkajs";
import { childConfig, nowMs, onStop } from "./common.mjs";

const { brokers, topic, groupId, records } = childConfig();
const kafka = new Kafka({ clientId: "bench-kafka-ceiling", brokers, logLevel: logLevel.ERROR });
const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
onStop(() => consumer.disconnect());

let count = 0;
let bytes = 0;
let firstAt;
await consumer.connect();
await consumer.subscribe({ topics: [topic], fromBeginning: true });
await consumer.run({
  eachBatch: async ({ batch }) => {
    if (firstAt === undefined) {
      firstAt = nowMs();
      process.send({ type: "first", at: firstAt });
    }
    for (const message of batch.messages) bytes += message.value?.length ?? 0;
    const before = count;
    count += batch.messages.length;
    if (before < records && count >= records) process.send({ type: "done", at: nowMs(), count, bytes, firstAt });
  },
});
