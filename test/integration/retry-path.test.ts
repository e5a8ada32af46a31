import { randomUUID } from "node:crypto";
import { Kafka, logLevel, Partitioners, type KafkaMessage } from "kafkajs";
import { afterEach, describe, expect, inject, it } from "vitest";
import { startSidecar, type RunningSidecar } from "../../src/app/sidecar.js";
import { createLogger } from "../../src/observability/logger.js";
import { headerText, H } from "../../src/kafka/handoff-records.js";
import { readTopicToEnd } from "../../src/kafka/topic-reader.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { settingsFrom } from "../support/settings.js";

const brokers = inject("kafkaBrokers");
const kafka = new Kafka({ clientId: "retry-path-test", brokers, logLevel: logLevel.NOTHING });
const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  cleanup.push(() => r.close());
  return r;
}

async function sidecar(targetUrl: string, extra: Record<string, unknown> = {}) {
  const id = randomUUID().slice(0, 8);
  const topics = { events: `events-${id}`, retry: `retry-${id}`, dlq: `dlq-${id}` };
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: topics.events, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();
  const settings = settingsFrom({
    enabled: true,
    "shutdown-grace": "5s",
    http: { "allow-private-networks": true, timeout: "1s" },
    retry: { topic: topics.retry, "in-process-budget": "0s" },
    "dead-letter": { topic: topics.dlq },
    kafka: { brokers, topics: [topics.events], "group-id": `group-${id}`, "from-beginning": true, "session-timeout": "10s" },
    server: { port: 0, host: "127.0.0.1" },
    configs: [
      {
        "tenant-id": "acme",
        name: "main",
        secret: "s3cret",
        "max-attempts": 3,
        "backoff-ms": 200,
        subscriptions: [{ "event-type": "*", "target-url": targetUrl }],
      },
    ],
    ...extra,
  });
  const running: RunningSidecar = await startSidecar(settings, logger);
  cleanup.push(() => running.stop());
  return { running, topics, settings };
}

async function produce(topic: string, value: string, headers: Record<string, string>) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, messages: [{ key: "k1", value, headers }] });
  await producer.disconnect();
}

async function readAll(topic: string): Promise<KafkaMessage[]> {
  const messages: KafkaMessage[] = [];
  await readTopicToEnd(kafka, topic, async ({ message }) => void messages.push(message), "test-reader");
  return messages;
}

async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("durable retries and dead letters on the real broker", () => {
  it("a 503 goes through the retry topic and is delivered with the same delivery id and attempt count", async () => {
    const r = await receiver();
    r.behave((_req, i) => (i < 2 ? { kind: "respond", status: 503 } : { kind: "respond", status: 200 }));
    const { topics, settings } = await sidecar(`${r.url}/hook`);
    await produce(topics.events, '{"n":1}', { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" });
    await r.waitForRequests(3, 30_000);
    const ids = new Set(r.requests.map((q) => q.headers["x-pyfly-delivery-id"]));
    expect(ids.size).toBe(1);
    // Backoff 200 ms then 400 ms, honoured although the waits happened outside the record's lifetime.
    expect((r.requests[1]?.at ?? 0) - (r.requests[0]?.at ?? 0)).toBeGreaterThanOrEqual(190);
    expect((r.requests[2]?.at ?? 0) - (r.requests[1]?.at ?? 0)).toBeGreaterThanOrEqual(390);
    // One hand-off to the retry topic; the retry consumer keeps the delivery in process after that
    // (no write per round), so the topic holds the first retry only.
    const retries = await readAll(topics.retry);
    expect(retries.map((m) => headerText(m.headers, H.attempts))).toEqual(["1"]);
    expect(retries.map((m) => headerText(m.headers, H.origin))).toEqual([settings.kafka.groupId]);
    expect(retries.every((m) => m.value?.toString() === '{"n":1}')).toBe(true);
    expect(await readAll(topics.dlq).catch(() => [])).toHaveLength(0);
  });

  it("exhausted attempts end in the dead-letter topic with everything needed, and replay delivers them", async () => {
    const r = await receiver();
    r.behave({ kind: "respond", status: 500 });
    const { topics, settings, running } = await sidecar(`${r.url}/hook`);
    await produce(topics.events, '{"b":2,"a":"é"}', { "x-tenant-id": "acme", "x-event-type": "InvoicePaid", "x-trace": "t-1" });
    const dead = await eventually(async () => {
      const messages = await readAll(topics.dlq).catch(() => []);
      return messages.length > 0 ? messages : undefined;
    });
    expect(r.requests).toHaveLength(3);
    const [letter] = dead;
    expect(letter?.value?.toString()).toBe('{"a":"\\u00e9","b":2}');
    expect(headerText(letter?.headers, H.reason)).toBe("attempts_exhausted");
    expect(headerText(letter?.headers, H.attempts)).toBe("3");
    expect(headerText(letter?.headers, H.lastError)).toBe("HTTP 500");
    // The URL may be a credential: the record names the subscription by fingerprint, and shows it redacted.
    expect(headerText(letter?.headers, H.target)).toBe(`${r.url}/…`);
    expect(dead.some((m) => JSON.stringify(m.headers).includes("/hook"))).toBe(false);
    expect(headerText(letter?.headers, H.mac)).toMatch(/^v1=/);
    expect(headerText(letter?.headers, "x-trace")).toBe("t-1");
    expect(headerText(letter?.headers, H.deliveryId)).toBe(r.requests[0]?.headers["x-pyfly-delivery-id"]);
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${running.adminPort}/metrics`)).text();
      return text.split("\n").find((line) => line.startsWith(name));
    };
    expect(await metric("callbacks_retries_scheduled_total{")).toMatch(/ 1$/);
    expect(await metric('callbacks_dead_letters_total{tenant="acme",reason="attempts_exhausted"}')).toMatch(/ 1$/);
    // The retry was consumed and committed: nothing left behind in the retry topic.
    expect(
      await eventually(async () => ((await metric("callbacks_retry_backlog ")) === "callbacks_retry_backlog 0" ? true : undefined)),
    ).toBe(true);

    r.behave({ kind: "respond", status: 200 });
    const { replayCommand } = await import("../../src/cli/replay.js");
    const { stringify } = await import("yaml");
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const dir = mkdtempSync("/tmp/replay-");
    writeFileSync(`${dir}/app.yml`, stringify({ pyfly: { callbacks: { ...toYaml(settings, topics) } } }));
    const code = await replayCommand(["--config", `${dir}/app.yml`, "--tenant", "acme"]);
    expect(code).toBe(0);
    expect(r.requests).toHaveLength(4);
    expect(r.requests[3]?.headers["x-pyfly-delivery-id"]).toBe(headerText(letter?.headers, H.deliveryId));
  });

  it("an undispatchable record is dead-lettered with its reason and the consumer goes on", async () => {
    const r = await receiver();
    const { topics } = await sidecar(`${r.url}/hook`);
    await produce(topics.events, "not json", { "x-tenant-id": "acme", "x-event-type": "E" });
    await produce(topics.events, "{}", { "x-event-type": "E" });
    await produce(topics.events, '{"ok":true}', { "x-tenant-id": "acme", "x-event-type": "E" });
    await r.waitForRequests(1);
    const dead = await eventually(async () => {
      const m = await readAll(topics.dlq).catch(() => []);
      return m.length >= 2 ? m : undefined;
    });
    expect(dead.map((m) => headerText(m.headers, H.reason)).sort()).toEqual(["invalid_json", "missing_tenant"]);
    expect(dead.find((m) => headerText(m.headers, H.reason) === "invalid_json")?.value?.toString()).toBe("not json");
  });
});

/** The test's settings back in application.yml form, for the replay command. */
function toYaml(settings: ReturnType<typeof settingsFrom>, topics: { retry: string; dlq: string }) {
  return {
    http: { "allow-private-networks": true, timeout: "1s" },
    retry: { topic: topics.retry },
    "dead-letter": { topic: topics.dlq },
    kafka: { brokers: settings.kafka.brokers },
    configs: [
      {
        "tenant-id": "acme",
        name: "main",
        secret: "s3cret",
        "max-attempts": 3,
        "backoff-ms": 200,
        subscriptions: [{ "event-type": "*", "target-url": settings.configs[0]?.subscriptions[0]?.target_url }],
      },
    ],
  };
}
