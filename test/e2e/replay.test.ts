/**
 * `callback-sidecar replay` (the BUILT cli) against dead letters on the real broker: every replayed
 * delivery gets exactly max-attempts attempts, also when the deliveries outlast the consumer's
 * session timeout, and dead letters that cannot be replayed are skipped and counted. The dead letters are written with the sidecar's own codec, as the sidecar writes them.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Admin, Producer } from "kafkajs";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redactUrl, subscriptionFingerprint } from "../../src/domain/subscription-ref.js";
import { handoffKeys } from "../../src/kafka/handoff-mac.js";
import {
  deliveryDeadLetter,
  H,
  MAX_HANDOFF_VALUE_BYTES,
  sealed,
  undispatchableDeadLetter,
  type DeliveryHandoff,
  type OutboundRecord,
} from "../../src/kafka/handoff-records.js";
import { e2eSuite } from "../support/e2e-suite.js";
import { runCli, type CliResult } from "../support/cli.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { sidecarConfig } from "../support/sidecar-process.js";
import { createTopic, DELIVERY_ID, unique, type TestTopic } from "../support/traffic.js";

const e2e = e2eSuite();
const { brokers, track } = e2e;
const SECRET = "e2e-replay-secret-93b1";
const CONFIG_ID = "acme-replay";

let admin: Admin;
let producer: Producer;
let workDir: string;

beforeAll(() => {
  ({ admin, producer } = e2e);
  workDir = mkdtempSync(join(tmpdir(), "replay-e2e-"));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function receiver503(): Promise<Receiver> {
  return track(await startReceiver({ kind: "respond", status: 503 }));
}

/** The sidecar's configuration for a replay from `deadLetters` to `targetUrl`, written to a file. */
function replayConfig(
  deadLetters: TestTopic,
  targetUrl: string,
  retry: { "max-attempts": number; "backoff-ms": number },
  over: Record<string, unknown> = {},
): string {
  const callbacks = sidecarConfig({
    callbacks: over,
    brokers,
    groupId: unique("replay-group"),
    topics: ["unused"],
    retryTopic: `${deadLetters.name}.retry`,
    deadLetterTopic: deadLetters.name,
    configs: [
      {
        id: CONFIG_ID,
        "tenant-id": "acme",
        name: "orders",
        secret: SECRET,
        ...retry,
        subscriptions: [{ "event-type": "OrderPlaced", "target-url": targetUrl }],
      },
    ],
  });
  const path = join(workDir, `${deadLetters.name}.yml`);
  writeFileSync(path, stringify({ pyfly: { callbacks } }));
  return path;
}

function handoff(deliveryId: string, targetUrl: string): DeliveryHandoff {
  return {
    deliveryId,
    executionId: randomUUID(),
    configId: CONFIG_ID,
    tenantId: "acme",
    eventType: "OrderPlaced",
    subscriptionEventType: "OrderPlaced",
    subscriptionFingerprint: subscriptionFingerprint({ event_type: "OrderPlaced", target_url: targetUrl, headers: {} }),
    target: redactUrl(targetUrl),
    attempts: 5,
    createdAt: new Date().toISOString(),
    occurredAt: Date.now(),
    lastError: "HTTP 503",
    responseStatus: 503,
    source: { topic: "orders", partition: 0, offset: "0" },
  };
}

/** A dead letter of an exhausted delivery, as the sidecar writes it (sealed with the config's derived key). */
function deadLetter(deliveryId: string, targetUrl: string, body = JSON.stringify({ id: deliveryId })): OutboundRecord {
  const record = deliveryDeadLetter(
    handoff(deliveryId, targetUrl),
    body,
    "attempts_exhausted",
    { "x-tenant-id": "acme" },
    deliveryId,
    Date.now(),
  );
  return sealed(record, "dead-letter", handoffKeys([], { id: CONFIG_ID, secret: SECRET })[0] as Buffer);
}

async function write(topic: TestTopic, records: OutboundRecord[], partition?: (i: number) => number): Promise<void> {
  // One record per request keeps each send far below the broker's request limit (one is ~900 KB).
  for (const [i, r] of records.entries()) {
    await producer.send({
      topic: topic.name,
      acks: -1,
      messages: [{ key: r.key, value: r.value, headers: r.headers, partition: partition?.(i) ?? 0 }],
    });
  }
}

interface ReplayOutput {
  lines: Record<string, unknown>[];
  summary: Record<string, number>;
}

function parseOutput(result: CliResult): ReplayOutput {
  const lines = result.stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = lines.pop() as { summary?: Record<string, number> } | undefined;
  if (!last?.summary) throw new Error(`no summary line\n${result.stdout}\n${result.stderr}`);
  return { lines, summary: last.summary };
}

/** Requests per delivery id. */
function attemptsById(r: Receiver): Map<string, number> {
  const out = new Map<string, number>();
  for (const req of r.requests) {
    const id = String(req.headers[DELIVERY_ID]);
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

describe("replay (built cli, real broker)", () => {
  it("40 dead letters to a receiver answering 503 (max-attempts 2): each tried exactly twice; a truncated and an undispatchable dead letter are skipped and counted", async () => {
    const r = await receiver503();
    const target = `${r.url}/hook`;
    // One partition, the two unreplayable records in the middle: a reader that threw on them (or
    // restarted from the beginning) would send the first ones again.
    const topic = await createTopic(admin, "replay-dlq", 1);
    const ids = Array.from({ length: 40 }, (_, i) => `replay-${i}-${randomUUID().slice(0, 8)}`);
    const truncatedId = `truncated-${randomUUID().slice(0, 8)}`;
    const big = JSON.stringify({ id: truncatedId, pad: "x".repeat(MAX_HANDOFF_VALUE_BYTES) });
    const truncated = deadLetter(truncatedId, target, big);
    expect(truncated.headers[H.valueTruncated]).toBe(String(Buffer.byteLength(big)));
    const undispatchable = undispatchableDeadLetter(
      Buffer.from("not json"),
      { "x-tenant-id": "acme" },
      null,
      { topic: "orders", partition: 0, offset: "7" },
      "invalid_json",
      "Unexpected token",
      Date.now(),
    );
    const letters = ids.map((id) => deadLetter(id, target));
    await write(topic, [...letters.slice(0, 20), truncated, undispatchable, ...letters.slice(20)]);

    const config = replayConfig(topic, target, { "max-attempts": 2, "backoff-ms": 50 });
    const started = Date.now();
    const result = await runCli(["replay", "--config", config], { timeoutMs: 90_000 });
    const { lines, summary } = parseOutput(result);
    console.log(`replay of 40 dead letters (503, max-attempts 2): ${Date.now() - started} ms, summary ${JSON.stringify(summary)}`);

    expect(result.code, result.stderr).toBe(1);
    expect(summary).toMatchObject({ read: 42, matched: 41, delivered: 0, failed: 40, truncated: 1, not_replayable: 1 });
    const tried = attemptsById(r);
    expect(tried.size).toBe(40);
    expect([...tried.keys()].sort()).toEqual([...ids].sort());
    for (const [id, n] of tried) expect(n, id).toBe(2);
    expect(r.requests).toHaveLength(80);

    const failed = lines.filter((l) => l.status === "FAILED");
    expect(failed).toHaveLength(40);
    for (const l of failed) expect(l).toMatchObject({ attempts: 2, last_error: "HTTP 503" });
    expect(lines.find((l) => l.delivery_id === truncatedId)).toMatchObject({
      offset: "20",
      replayable: false,
      skipped: "value_truncated",
      original_bytes: Buffer.byteLength(big),
    });
    expect(lines.find((l) => l.offset === "21")).toMatchObject({ replayable: false, skipped: "not_a_delivery", reason: "invalid_json" });

    // A dry run lists the same dead letters and sends nothing.
    const dry = await runCli(["replay", "--config", config, "--dry-run"], { timeoutMs: 60_000 });
    expect(dry.code, dry.stderr).toBe(0);
    const dryOut = parseOutput(dry);
    expect(dryOut.lines.filter((l) => l.dry_run === true)).toHaveLength(40);
    expect(dryOut.summary).toMatchObject({ read: 42, matched: 41, truncated: 1, not_replayable: 1, delivered: 0, failed: 0 });
    expect(r.requests).toHaveLength(80);
  }, 120_000);

  it("deliveries that outlast the consumer's session timeout (30 s) are not read again: 16 first attempts answered after 36 s, each of 40 dead letters tried exactly twice", async () => {
    // The first 16 dead letters' first attempts take 36 s, so all 16 delivery slots are busy that
    // long. Their bodies (~100 KB) spread the topic over several fetches: a reader that waited for a
    // slot inside the consumer's handler would send no heartbeat for 36 s, lose its session and
    // read the topic again from the beginning (the throwaway group commits nothing).
    const slowMs = 36_000;
    const ids = Array.from({ length: 40 }, (_, i) => `slow-${i}-${randomUUID().slice(0, 8)}`);
    const slow = new Set(ids.slice(0, 16));
    const seen = new Set<string>();
    const r = await receiver503();
    r.behave((req) => {
      const id = String(req.headers[DELIVERY_ID]);
      const first = !seen.has(id);
      seen.add(id);
      return { kind: "respond", status: 503, ...(first && slow.has(id) ? { delayMs: slowMs } : {}) };
    });
    const target = `${r.url}/hook`;
    const topic = await createTopic(admin, "replay-dlq-slow", 1);
    await write(
      topic,
      ids.map((id) => deadLetter(id, target, JSON.stringify({ id, pad: "p".repeat(100 * 1024) }))),
    );
    const config = replayConfig(topic, target, { "max-attempts": 2, "backoff-ms": 50 }, { http: { timeout: "60s" } });
    const started = Date.now();
    const result = await runCli(["replay", "--config", config], { timeoutMs: 150_000 });
    const { summary } = parseOutput(result);
    console.log(`replay of 40 dead letters (16 slow): ${Date.now() - started} ms, summary ${JSON.stringify(summary)}`);

    expect(result.code, result.stderr).toBe(1);
    expect(summary).toMatchObject({ read: 40, matched: 40, delivered: 0, failed: 40, truncated: 0, not_replayable: 0 });
    const tried = attemptsById(r);
    expect([...tried.keys()].sort()).toEqual([...ids].sort());
    for (const [id, n] of tried) expect(n, id).toBe(2);
    expect(r.requests).toHaveLength(80);
  }, 180_000);
});
