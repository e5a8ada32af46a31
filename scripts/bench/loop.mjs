// The hand-written loop (a child process of scripts/bench.mjs), what a team might write in 30 lines:
// kafkajs eachMessage -> JSON.parse -> sorted-key stringify -> HMAC-SHA256 -> undici POST to each
// target in turn, awaited. One message at a time (kafkajs's default partitionsConsumedConcurrently).
import { createHmac } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { request } from "undici";
import { DELIVERY_ID_HEADER, SECRET, childConfig, onStop, sortedStringify } from "./common.mjs";

const { brokers, topic, groupId, targets } = childConfig();
const kafka = new Kafka({ clientId: "bench-loop", brokers, logLevel: logLevel.ERROR });
const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
onStop(() => consumer.disconnect());
consumer.on(consumer.events.GROUP_JOIN, () => process.send({ type: "ready" }));

await consumer.connect();
await consumer.subscribe({ topics: [topic], fromBeginning: true });
await consumer.run({
  eachMessage: async ({ topic, partition, message }) => {
    const event = JSON.parse(message.value.toString("utf8"));
    const body = sortedStringify(event);
    const signature = `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;
    for (let t = 0; t < targets.length; t++) {
      const res = await request(targets[t], {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-pyfly-signature": signature,
          "x-pyfly-event-type": message.headers["x-event-type"].toString(),
          "x-pyfly-tenant-id": message.headers["x-tenant-id"].toString(),
          [DELIVERY_ID_HEADER]: `${topic}-${partition}-${message.offset}-${t}`,
        },
        body,
      });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`receiver answered ${res.statusCode}`);
    }
  },
});
