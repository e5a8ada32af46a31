// Proves kafkajs 2.2.4 speaks every API the sidecar needs with the broker from scripts/kafka.mjs (Kafka 4.x removed
// old protocol versions, KIP-896). Each test uses its own topics and group ids so they cannot see each other's data.
import { randomUUID } from "node:crypto";
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type KafkaMessage, type Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const brokers = inject("kafkaBrokers");

const kafka = new Kafka({ brokers: brokers ?? [], clientId: "kafka-compat-test", logLevel: logLevel.NOTHING });
const consumers: Consumer[] = [];
let admin: Admin;
let producer: Producer;

const unique = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

function newConsumer(groupId: string): Consumer {
  // kafkajs only heartbeats/rejoins/leaves between fetches, so the 5 s default long-poll would add seconds to every
  // rebalance and disconnect; short timeouts keep the group tests fast.
  const c = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 10_000, maxWaitTimeInMs: 250 });
  consumers.push(c);
  return c;
}

async function createTopic(topic: string, numPartitions = 3): Promise<void> {
  await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: true });
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the partitions assigned to `consumer` at its next GROUP_JOIN. */
function nextAssignment(consumer: Consumer, topic: string, timeoutMs = 30_000): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no group join within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = consumer.on(consumer.events.GROUP_JOIN, (e) => {
      clearTimeout(timer);
      off();
      resolve([...(e.payload.memberAssignment[topic] ?? [])].sort());
    });
  });
}

beforeAll(async () => {
  if (!brokers) throw new Error("no kafkaBrokers provided: is test/support/kafka-global-setup.ts registered?");
  admin = kafka.admin();
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await admin.connect();
  await producer.connect();
});

afterAll(async () => {
  await Promise.allSettled(consumers.map((c) => c.disconnect()));
  await producer?.disconnect();
  await admin?.disconnect();
});

describe("kafkajs 2.2.4 against the local broker", () => {
  it("admin: describeCluster and createTopics with 3 partitions", async () => {
    const cluster = await admin.describeCluster();
    expect(cluster.brokers.map((b) => `${b.host}:${b.port}`)).toEqual(brokers);
    const topic = unique("compat-admin");
    await expect(admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })).resolves.toBe(
      true,
    );
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics[0]?.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
    expect(await admin.listTopics()).toContain(topic);
  });

  it("producer keys and headers (incl. binary) round-trip through a group consumer", async () => {
    const topic = unique("compat-headers");
    await createTopic(topic);
    const binary = Buffer.from([0x00, 0xff, 0x80, 0x7f, 0x0a, 0xc3, 0x28]); // NUL, invalid UTF-8 on purpose
    const sent = await producer.send({
      topic,
      messages: [
        { key: "tenant-a", value: "v1", headers: { "x-tenant-id": "tenant-a", "x-event-type": "order.created", bin: binary } },
        { key: "tenant-a", value: "v2", headers: { "x-tenant-id": "tenant-a" } },
        { key: Buffer.from([0x01, 0x02]), value: Buffer.from([0xde, 0xad]), headers: { multi: ["a", "b"] } },
      ],
    });
    expect(sent.every((r) => r.errorCode === 0)).toBe(true);

    const got: { partition: number; message: KafkaMessage }[] = [];
    const consumer = newConsumer(unique("g-headers"));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void got.push({ partition, message }) });
    await waitFor("3 messages", () => got.length >= 3);

    const byValue = (v: string) => got.find((g) => g.message.value?.toString("latin1") === v);
    const v1 = byValue("v1");
    const v2 = byValue("v2");
    expect(v1?.message.key?.toString()).toBe("tenant-a");
    expect(v1?.message.headers?.["x-tenant-id"]?.toString()).toBe("tenant-a");
    expect(v1?.message.headers?.["x-event-type"]?.toString()).toBe("order.created");
    expect(Buffer.isBuffer(v1?.message.headers?.bin)).toBe(true);
    expect((v1?.message.headers?.bin as Buffer).equals(binary)).toBe(true);
    // same key -> same partition, in send order
    expect(v2?.partition).toBe(v1?.partition);
    expect(BigInt(v2?.message.offset ?? -1)).toBe(BigInt(v1?.message.offset ?? -2) + 1n);
    const raw = byValue(Buffer.from([0xde, 0xad]).toString("latin1"));
    expect(raw?.message.key?.equals(Buffer.from([0x01, 0x02]))).toBe(true);
    // kafkajs decodes a repeated header as an array of Buffers
    expect((raw?.message.headers?.multi as Buffer[]).map(String)).toEqual(["a", "b"]);
  });

  it("manual commits (autoCommit: false) survive a consumer restart; eachBatch resumes after the committed offset", async () => {
    const topic = unique("compat-commit");
    const groupId = unique("g-commit");
    await createTopic(topic, 1);
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `m${i}` })) });

    const first: string[] = [];
    const c1 = newConsumer(groupId);
    await c1.connect();
    await c1.subscribe({ topics: [topic], fromBeginning: true });
    await c1.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        first.push(message.value!.toString());
        // commit only through m3: the next offset to read is 4
        if (message.value!.toString() === "m3")
          await c1.commitOffsets([{ topic, partition: 0, offset: String(Number(message.offset) + 1) }]);
      },
    });
    await waitFor("all 10 on the first consumer", () => first.length >= 10);
    await c1.disconnect();
    expect(first).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));

    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(committed?.partitions).toEqual([expect.objectContaining({ partition: 0, offset: "4" })]);

    const second: string[] = [];
    let committedThrough = -1;
    const c2 = newConsumer(groupId);
    await c2.connect();
    await c2.subscribe({ topics: [topic], fromBeginning: true }); // fromBeginning must not override a committed offset
    await c2.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        for (const m of batch.messages) {
          second.push(m.value!.toString());
          resolveOffset(m.offset);
        }
        await heartbeat();
        const next = Number(batch.lastOffset()) + 1;
        await c2.commitOffsets([{ topic, partition: batch.partition, offset: String(next) }]);
        committedThrough = next;
      },
    });
    await waitFor("the uncommitted tail, committed", () => committedThrough === 10);
    expect(second).toEqual(["m4", "m5", "m6", "m7", "m8", "m9"]);
    await c2.disconnect();
    const [after] = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(after?.partitions[0]?.offset).toBe("10");
  });

  it("pause stops delivery and resume restarts it", async () => {
    const topic = unique("compat-pause");
    await createTopic(topic);
    const got: string[] = [];
    const consumer = newConsumer(unique("g-pause"));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const joined = nextAssignment(consumer, topic);
    await consumer.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) });
    await joined;

    await producer.send({ topic, messages: [{ value: "before" }] });
    await waitFor("message before pause", () => got.length === 1);

    consumer.pause([{ topic }]);
    expect(consumer.paused()).toEqual([{ topic, partitions: [0, 1, 2] }]);
    await producer.send({ topic, messages: [0, 1, 2, 3, 4, 5].map((i) => ({ key: `k${i}`, value: `during${i}` })) });
    await sleep(2_000); // ~8 fetch cycles at maxWaitTimeInMs 250: unpaused, these would have arrived
    expect(got).toEqual(["before"]);

    consumer.resume([{ topic }]);
    expect(consumer.paused()).toEqual([]);
    await waitFor("messages after resume", () => got.length === 7);
    expect(got.slice(1).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `during${i}`));
  });

  it("two consumers split the partitions and rebalance when one leaves", async () => {
    const topic = unique("compat-group");
    const groupId = unique("g-group");
    await createTopic(topic);
    const seenBy = { a: new Set<string>(), b: new Set<string>() };
    const a = newConsumer(groupId);
    const b = newConsumer(groupId);
    for (const c of [a, b]) {
      await c.connect();
      await c.subscribe({ topics: [topic], fromBeginning: true });
    }

    const aAlone = nextAssignment(a, topic);
    await a.run({ eachMessage: async ({ message }) => void seenBy.a.add(message.value!.toString()) });
    expect(await aAlone).toEqual([0, 1, 2]);

    const aShared = nextAssignment(a, topic);
    const bShared = nextAssignment(b, topic);
    await b.run({ eachMessage: async ({ message }) => void seenBy.b.add(message.value!.toString()) });
    const [pa, pb] = await Promise.all([aShared, bShared]);
    expect(pa.length).toBeGreaterThan(0);
    expect(pb.length).toBeGreaterThan(0);
    expect([...pa, ...pb].sort()).toEqual([0, 1, 2]);

    // one message per partition: each member receives exactly the ones for its own partitions
    await producer.send({ topic, messages: [0, 1, 2].map((p) => ({ partition: p, value: `p${p}` })) });
    await waitFor("all partitions consumed", () => seenBy.a.size + seenBy.b.size === 3);
    expect([...seenBy.a].sort()).toEqual(pa.map((p) => `p${p}`));
    expect([...seenBy.b].sort()).toEqual(pb.map((p) => `p${p}`));

    const aAgain = nextAssignment(a, topic);
    await b.disconnect(); // sends LeaveGroup: the rebalance must not wait for the session timeout
    expect(await aAgain).toEqual([0, 1, 2]);
    await producer.send({ topic, messages: pb.map((p) => ({ partition: p, value: `after-leave-p${p}` })) });
    await waitFor("a takes over b's partitions", () => pb.every((p) => seenBy.a.has(`after-leave-p${p}`)));
  });

  it("subscribe({ topics: [RegExp] }) consumes matching topics only", async () => {
    const prefix = unique("compat-re");
    const [t1, t2, other] = [`${prefix}.orders`, `${prefix}.invoices`, `${prefix}-other`];
    for (const t of [t1, t2, other]) await createTopic(t, 1);
    const got: string[] = [];
    const consumer = newConsumer(unique("g-re"));
    await consumer.connect();
    await consumer.subscribe({ topics: [new RegExp(`^${prefix}\\.`)], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ topic }) => void got.push(topic) });
    for (const t of [other, t1, t2]) await producer.send({ topic: t, messages: [{ value: t }] });
    await waitFor("both matching topics", () => got.length >= 2);
    await sleep(1_000); // a message from the non-matching topic would arrive in this window
    expect(got.sort()).toEqual([t2, t1].sort());
  });
});
