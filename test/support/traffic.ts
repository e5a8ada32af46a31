/**
 * Traffic for end-to-end and fault tests: unique topics, records produced with headers (and their
 * partition/offset read back), recording receivers, and a delivery ledger that turns what the
 * receivers saw into sent / delivered / duplicated / lost for a set of expected deliveries.
 */
import { randomUUID } from "node:crypto";
import { Kafka, logLevel, Partitioners, type Admin, type Producer } from "kafkajs";
import { startReceiver, type Behaviour, type ReceivedRequest, type Receiver } from "./receiver.js";
import type { SidecarSetup, SidecarSetupWithDefaults } from "./sidecar-process.js";

export const DELIVERY_ID = "x-pyfly-delivery-id";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `prefix-xxxxxxxx`: topics, group ids and record ids that no other test shares. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `check`; `what` may be a function, read at the timeout, to say how far it got. */
export async function waitFor(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(everyMs);
  }
}

/** A kafkajs client for the test itself (quiet). */
export function testKafka(brokers: string[], clientId = "e2e-traffic"): Kafka {
  return new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING, retry: { retries: 5 } });
}

export function testProducer(kafka: Kafka): Producer {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
}

export interface TestTopic {
  name: string;
  partitions: number;
}

/** Creates a topic with a unique name (waits for its leaders). */
export async function createTopic(admin: Admin, prefix: string, partitions = 3): Promise<TestTopic> {
  const name = unique(prefix);
  try {
    await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } catch (error) {
    // A busy broker may answer the leader wait's metadata request before it knows the new topic
    // (UNKNOWN_TOPIC_OR_PARTITION, which kafkajs does not retry there): the topic exists; wait for it.
    if ((error as { type?: string }).type !== "UNKNOWN_TOPIC_OR_PARTITION") throw error;
    await waitFor(`topic ${name} in the metadata`, async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [name] });
      return topics[0]?.partitions.length === partitions && topics[0].partitions.every((p) => p.leader >= 0);
    });
  }
  return { name, partitions };
}

/**
 * A fresh event topic and group for one scenario. `handoffTopics`: "per-topic" (default) names the
 * retry and dead-letter topics after the event topic, so no two tests share them; "defaults" leaves
 * them out of the configuration, so the sidecar uses "<group-id>.retry" / "<group-id>.dead-letter".
 */
export async function scenario(
  admin: Admin,
  brokers: string[],
  prefix: string,
  options?: { partitions?: number; handoffTopics?: "per-topic" },
): Promise<{ topic: TestTopic; setup: Omit<SidecarSetup, "configs"> }>;
export async function scenario(
  admin: Admin,
  brokers: string[],
  prefix: string,
  options: { partitions?: number; handoffTopics: "defaults" },
): Promise<{ topic: TestTopic; setup: Omit<SidecarSetupWithDefaults, "configs"> }>;
export async function scenario(
  admin: Admin,
  brokers: string[],
  prefix: string,
  options: { partitions?: number; handoffTopics?: "per-topic" | "defaults" } = {},
): Promise<{ topic: TestTopic; setup: Omit<SidecarSetupWithDefaults, "configs"> }> {
  const topic = await createTopic(admin, prefix, options.partitions ?? 3);
  const handoff = options.handoffTopics === "defaults" ? {} : { retryTopic: `${topic.name}.retry`, deadLetterTopic: `${topic.name}.dlq` };
  return { topic, setup: { brokers, groupId: unique(`${prefix}-group`), topics: [topic.name], ...handoff } };
}

/** Per partition, the offset a group committed for `topic` (-1 when it committed nothing). */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map((entry?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
}

/** Per partition, the end of `topic` (the offset the next record will get). */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
}

/** A record to produce. `id` names it in the ledger; the payload must carry it (see `events`). */
export interface OutRecord {
  id: string;
  key?: string | null;
  value: string | Buffer | null;
  /** An array repeats the header, one entry per value (as kafkajs writes it). */
  headers?: Record<string, string | Buffer | (string | Buffer)[]>;
  /** Chosen by `produce` (round robin) when absent. */
  partition?: number;
}

export interface ProducedRecord extends OutRecord {
  topic: string;
  partition: number;
  offset: bigint;
}

export type HeaderStyle = "ours" | "cloudevents";

/**
 * `n` valid events whose JSON payload is `{"id": "<prefix>-<i>", "seq": i, ...extra}`, with the
 * tenant and event type in our headers (x-tenant-id, x-event-type) or CloudEvents binary mode.
 */
export function events(
  n: number,
  options: { prefix: string; tenant: string; eventType: string; style?: HeaderStyle; extra?: Record<string, unknown> },
): OutRecord[] {
  const headers: Record<string, string> =
    options.style === "cloudevents"
      ? { ce_tenantid: options.tenant, ce_type: options.eventType, ce_specversion: "1.0", ce_source: "e2e", ce_id: "" }
      : { "x-tenant-id": options.tenant, "x-event-type": options.eventType };
  return Array.from({ length: n }, (_, i) => {
    const id = `${options.prefix}-${i}`;
    const h = { ...headers };
    if ("ce_id" in h) h.ce_id = id;
    return { id, key: id, value: JSON.stringify({ id, seq: i, ...options.extra }), headers: h };
  });
}

/**
 * Produces `records` in batches (acks from all replicas) and returns each with its partition and
 * offset: a record without a partition is placed round robin, and one send writes each partition's
 * records in order from the returned base offset.
 */
export async function produce(producer: Producer, topic: TestTopic, records: OutRecord[], batchSize = 250): Promise<ProducedRecord[]> {
  const out: ProducedRecord[] = [];
  let next = 0;
  for (let start = 0; start < records.length; start += batchSize) {
    const batch = records.slice(start, start + batchSize).map((r) => ({ ...r, partition: r.partition ?? next++ % topic.partitions }));
    const meta = await producer.send({
      topic: topic.name,
      acks: -1,
      messages: batch.map((r) => ({ key: r.key ?? null, value: r.value, headers: r.headers ?? {}, partition: r.partition })),
    });
    const base = new Map(meta.map((m) => [m.partition, BigInt(m.baseOffset ?? "0")]));
    const seen = new Map<number, bigint>();
    for (const r of batch) {
      const i = seen.get(r.partition) ?? 0n;
      seen.set(r.partition, i + 1n);
      const b = base.get(r.partition);
      if (b === undefined) throw new Error(`no produce metadata for partition ${r.partition}`);
      out.push({ ...r, topic: topic.name, offset: b + i });
    }
  }
  return out;
}

/**
 * Produces `records` over time (a stream): `batchSize` records every `intervalMs` (a function is
 * asked before each pause, with the count produced so far). `onBatch` sees progress; `stop`
 * (checked between batches) ends it early. Resolves with what was produced.
 */
export async function produceStream(
  producer: Producer,
  topic: TestTopic,
  records: OutRecord[],
  options: {
    batchSize: number;
    intervalMs: number | ((producedSoFar: number) => number);
    onBatch?: (producedSoFar: number) => void;
    stop?: () => boolean;
  },
): Promise<ProducedRecord[]> {
  const out: ProducedRecord[] = [];
  for (let start = 0; start < records.length; start += options.batchSize) {
    if (options.stop?.()) break;
    // Continue the round robin across batches.
    const batch = records
      .slice(start, start + options.batchSize)
      .map((r, i) => ({ ...r, partition: r.partition ?? (start + i) % topic.partitions }));
    out.push(...(await produce(producer, topic, batch, options.batchSize)));
    options.onBatch?.(out.length);
    if (start + options.batchSize < records.length)
      await sleep(typeof options.intervalMs === "function" ? options.intervalMs(out.length) : options.intervalMs);
  }
  return out;
}

/** A record read back from a topic, headers as text. */
export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning with a throwaway group until `count` records arrived (or the timeout). */
export async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<ReadRecord[]> {
  const consumer = kafka.consumer({
    groupId: unique("e2e-reader"),
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 250,
  });
  const records: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) {
          if (v !== undefined) headers[k] = (Array.isArray(v) ? v[0] : v)?.toString() ?? "";
        }
        records.push({ partition, offset: message.offset, key: message.key?.toString() ?? null, value: message.value, headers });
      },
    });
    await waitFor(`${count} records in ${topic} (have ${records.length})`, () => records.length >= count, timeoutMs).catch(() => undefined);
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/** A receiver the ledger can read: anything that keeps the requests it got. */
export interface RecordingSource {
  requests: ReceivedRequest[];
}

export type RecordingReceiver = Receiver;

/**
 * The requests of `source` that were answered 2xx (see ReceivedRequest.status), read afresh each
 * time: a ledger over it counts accepted deliveries only, so a first attempt answered 503 and its
 * retry are one delivery, not a duplicate.
 */
export function accepted(source: RecordingSource): RecordingSource {
  return {
    get requests() {
      return source.requests.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300);
    },
  };
}

/** A receiver that records every request on arrival and answers `status` after `delayMs`. */
export function startRecordingReceiver(options: { delayMs?: number; status?: number; port?: number } = {}): Promise<RecordingReceiver> {
  const behaviour: Behaviour = { kind: "respond", status: options.status ?? 200, ...(options.delayMs ? { delayMs: options.delayMs } : {}) };
  return startReceiver(behaviour, options.port === undefined ? {} : { port: options.port });
}

/** One delivery the test expects: a record (by id) to a target (`<receiver name><path>`). */
export interface ExpectedDelivery {
  record: string;
  target: string;
}

export interface LedgerEntry {
  target: string;
  record: string;
  deliveryId: string;
  at: number;
}

export interface FaultReport {
  name: string;
  /** Expected deliveries (record x subscription). */
  sent: number;
  /** Expected deliveries that arrived at least once. */
  delivered: number;
  /** Requests for expected deliveries beyond the first of each delivery id. */
  duplicated: number;
  /** Expected deliveries that never arrived. */
  lost: number;
  /** Requests that match no expected delivery. */
  unexpected: number;
  /** Expected deliveries that arrived under more than one delivery id (a redelivery that changed it). */
  idChanged: number;
  line: string;
}

/** The record id in a delivered body: the payload's `id` field (see `events`). */
export function recordIdOfBody(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { id?: unknown };
    return typeof parsed.id === "string" ? parsed.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every request the named receivers got, keyed by X-Pyfly-Delivery-Id: distinct ids, duplicates,
 * and what they mean against the deliveries a test expects. Reads the receivers' request lists
 * each time, so it can be asked at any moment.
 */
export class DeliveryLedger {
  constructor(
    private readonly sources: Record<string, RecordingSource>,
    private readonly recordIdOf: (req: ReceivedRequest) => string | undefined = (req) => recordIdOfBody(req.body),
  ) {}

  entries(): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (const [name, source] of Object.entries(this.sources)) {
      for (const req of source.requests) {
        const id = req.headers[DELIVERY_ID];
        out.push({
          target: `${name}${new URL(req.url, "http://x").pathname}`,
          record: this.recordIdOf(req) ?? "?",
          deliveryId: typeof id === "string" ? id : "",
          at: req.at,
        });
      }
    }
    return out;
  }

  /** Requests received so far, over all receivers. */
  get total(): number {
    return Object.values(this.sources).reduce((n, s) => n + s.requests.length, 0);
  }

  /** Distinct delivery ids received so far. */
  distinct(filter?: (e: LedgerEntry) => boolean): number {
    return new Set(
      this.entries()
        .filter((e) => !filter || filter(e))
        .map((e) => e.deliveryId),
    ).size;
  }

  /** Requests whose delivery id had been received before. */
  duplicates(filter?: (e: LedgerEntry) => boolean): number {
    const entries = this.entries().filter((e) => !filter || filter(e));
    return entries.length - new Set(entries.map((e) => e.deliveryId)).size;
  }

  report(name: string, expected: ExpectedDelivery[]): FaultReport {
    const byPair = new Map<string, LedgerEntry[]>();
    const pair = (record: string, target: string) => `${target}\u0000${record}`;
    for (const e of this.entries()) {
      const k = pair(e.record, e.target);
      const list = byPair.get(k);
      if (list) list.push(e);
      else byPair.set(k, [e]);
    }
    let delivered = 0;
    let duplicated = 0;
    let idChanged = 0;
    const wanted = new Set<string>();
    for (const x of expected) {
      const k = pair(x.record, x.target);
      if (wanted.has(k)) continue;
      wanted.add(k);
      const got = byPair.get(k) ?? [];
      if (got.length === 0) continue;
      delivered += 1;
      const ids = new Set(got.map((e) => e.deliveryId));
      duplicated += got.length - ids.size;
      if (ids.size > 1) idChanged += 1;
    }
    let unexpected = 0;
    for (const [k, list] of byPair) if (!wanted.has(k)) unexpected += list.length;
    const sent = wanted.size;
    const lost = sent - delivered;
    const line = `FAULT-REPORT ${name} sent=${sent} delivered=${delivered} duplicated=${duplicated} lost=${lost} unexpected=${unexpected} id_changed=${idChanged}`;
    console.log(line);
    return { name, sent, delivered, duplicated, lost, unexpected, idChanged, line };
  }
}

/** Expected deliveries: every record to every target. */
export function expectEach(records: { id: string }[], ...targets: string[]): ExpectedDelivery[] {
  return records.flatMap((r) => targets.map((target) => ({ record: r.id, target })));
}
