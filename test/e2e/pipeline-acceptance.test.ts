/**
 * The record pipeline's promises on the real broker, with the BUILT sidecar as child processes: poison
 * records on one partition, two deployments on one cluster with default retry topics (and with a
 * shared one), and consumer-group rebalances mid-stream (a replica joining, a replica stopping).
 * Every test prints `FAULT-REPORT <name> sent=.. delivered=.. duplicated=.. lost=..`.
 * The black hole under a backlog is in faults.test.ts, beside the steady-stream one.
 */
import type { Admin, Kafka, Producer } from "kafkajs";
import { beforeAll, describe, expect, it } from "vitest";
import { e2eSuite } from "../support/e2e-suite.js";
import { failFirstAttempt, startReceiver } from "../support/receiver.js";
import {
  callbackConfig,
  defaultHandoffTopics,
  SidecarProcess,
  sidecarConfig,
  type MetricMap,
  type SidecarSetupWithDefaults,
} from "../support/sidecar-process.js";
import {
  accepted,
  committedOffsets,
  DeliveryLedger,
  endOffsets,
  events,
  expectEach,
  produce,
  produceStream,
  readTopic,
  scenario,
  sleep,
  startRecordingReceiver,
  unique,
  waitFor,
  type OutRecord,
} from "../support/traffic.js";

const e2e = e2eSuite("e2e-acceptance");
const { brokers, track } = e2e;

const SECRET = "e2e-acceptance-pyfly-secret-8b3e";

let kafka: Kafka;
let admin: Admin;
let producer: Producer;
beforeAll(() => void ({ kafka, admin, producer } = e2e));

/** Records in a topic (fresh topics: the sum of the partitions' end offsets). */
const sizeOf = async (topic: string): Promise<number> => Number([...(await endOffsets(admin, topic)).values()].reduce((a, b) => a + b, 0n));

describe("poison records on one partition", () => {
  it("20 records, 4 poison values, 10 event types no header can carry, 30 records: the 50 delivered, the 14 dead-lettered, the offset at the end, no breaker opened, exit 0", async () => {
    const { topic, setup } = await scenario(admin, brokers, "accept-poison", { partitions: 1 });
    const receiver = track(await startRecordingReceiver());
    // A wildcard subscription: were the 注文確定 records let through, they would reach the HTTP layer.
    const sidecar = SidecarProcess.start(
      "poison",
      sidecarConfig({ ...setup, configs: [callbackConfig("acme", "all", SECRET, [{ eventType: "*", url: `${receiver.url}/all` }])] }),
    );
    await sidecar.waitReady();

    const H = { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" };
    const before = events(20, { prefix: "before", tenant: "acme", eventType: "OrderPlaced" });
    const poison: OutRecord[] = ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e400}'].map((text, i) => ({
      id: `poison-${i}`,
      value: Buffer.from(text),
      headers: H,
    }));
    const unbuildable = events(10, { prefix: "jp", tenant: "acme", eventType: "注文確定" });
    const after = events(30, { prefix: "after", tenant: "acme", eventType: "OrderPlaced" });
    const all = [...before, ...poison, ...unbuildable, ...after].map((r) => ({ ...r, partition: 0 }));
    const produced = await produce(producer, topic, all);
    const producedAt = Date.now();
    const end = (await endOffsets(admin, topic.name)).get(0) ?? 0n;
    expect(end).toBe(BigInt(all.length));

    const ordinary = [...before, ...after];
    const ledger = new DeliveryLedger({ r: receiver });
    await waitFor(
      () => `${ordinary.length} deliveries (have ${ledger.distinct()})`,
      () => ledger.distinct() >= ordinary.length,
      60_000,
    );
    let committed = -1n;
    await waitFor(
      () => `the group's committed offset at the end of the partition (${end}; committed ${committed})\n${sidecar.tail(10)}`,
      async () => (committed = (await committedOffsets(admin, setup.groupId, topic.name)).get(0) ?? -1n) >= end,
      60_000,
      100,
    );
    const committedMs = Date.now() - producedAt;
    const m = await sidecar.metricsUntil(
      (x) => `14 dead letters (have ${x.sum("callbacks_dead_letters_total")})`,
      (x) => x.sum("callbacks_dead_letters_total") >= 14,
    );
    await sleep(500); // anything extra would show up now

    const report = ledger.report("pipeline-poison-partition", expectEach(ordinary, "r/all"));
    const opened = m.sum("callbacks_circuit_breaker_transitions_total", { state: "open" });
    console.log(
      `poison: committed offset ${committed} (end ${end}) ${committedMs} ms after the records were produced; breaker openings ${opened}; ` +
        `skipped ${JSON.stringify(m.series("callbacks_events_skipped_total").map((s) => [s.labels.reason, s.value]))}`,
    );
    expect(report).toMatchObject({ sent: 50, delivered: 50, duplicated: 0, lost: 0, unexpected: 0 });
    expect(committed).toBe(end);
    expect(opened).toBe(0);
    expect(m.sum("callbacks_events_consumed_total", { topic: topic.name })).toBe(all.length);
    expect(m.sum("callbacks_deliveries_total", { status: "DELIVERED" })).toBe(50);
    expect(m.sum("callbacks_deliveries_total", { status: "FAILED" })).toBe(0);
    expect(m.sum("callbacks_events_skipped_total", { reason: "invalid_json" })).toBe(4);
    expect(m.sum("callbacks_events_skipped_total", { reason: "invalid_header" })).toBe(10);
    expect(m.sum("callbacks_dead_letters_total")).toBe(14);
    // No request was even attempted for the bad ones.
    expect(m.sum("callbacks_delivery_attempts_total")).toBe(50);

    // The 14 in the dead-letter topic, each with its reason and the original bytes.
    const dead = await readTopic(kafka, setup.deadLetterTopic as string, 14, 30_000);
    const byOffset = new Map(produced.map((r) => [String(r.offset), r]));
    const got = dead
      .map((d) => {
        const source = JSON.parse(d.headers["callback-source"] ?? "{}") as { topic?: string; offset?: string };
        const original = source.topic === topic.name ? byOffset.get(String(source.offset)) : undefined;
        return {
          id: original?.id ?? `? ${d.headers["callback-source"]}`,
          reason: d.headers["callback-reason"],
          sameBytes: original !== undefined && d.value !== null && d.value.equals(Buffer.from(original.value as string | Buffer)),
        };
      })
      .sort((a, b) => a.id.localeCompare(b.id));
    const want = [
      ...poison.map((r) => ({ id: r.id, reason: "invalid_json", sameBytes: true })),
      ...unbuildable.map((r) => ({ id: r.id, reason: "invalid_header", sameBytes: true })),
    ].sort((a, b) => a.id.localeCompare(b.id));
    expect(got).toEqual(want);

    // Still running, still serving, and a clean stop.
    expect(sidecar.exit).toBeUndefined();
    expect((await sidecar.get("/healthz")).status).toBe(200);
    expect((await sidecar.get("/readyz")).status).toBe(200);
    // The pipeline's own "nobody foresaw this" paths were never taken (a kafkajs crash and restart,
    // e.g. while a cold broker loads its group coordinator, is printed, not failed on).
    const logged = (msgs: string[]) =>
      sidecar
        .logs()
        .filter((l) => msgs.some((m) => String(l.msg).startsWith(m)))
        .map((l) => `${l.msg}: ${String(l.err)}`);
    const crashes = logged(["consumer crashed"]);
    if (crashes.length > 0) console.log(`poison: kafkajs consumer crashes (restarted): ${crashes.join("; ")}`);
    expect(
      logged(["record broke unexpectedly", "delivery broke unexpectedly", "retry record broke unexpectedly", "record work rejected"]).join(
        "\n",
      ),
    ).toBe("");
    sidecar.kill("SIGTERM");
    expect((await sidecar.waitExit(20_000)).code).toBe(0);
  }, 120_000);
});

/*
 * Two deployments (different group ids) on one cluster consume the same event topic with the same
 * tenant, each with its own subscription path (/a, /b) so the receiver tells them apart: the configs
 * differ only in that path. The receiver answers 503 to the first attempt of each (delivery id,
 * path) and 200 after, so every delivery goes through its deployment's retry topic once. Retry
 * settings are the defaults: 5 attempts, 5 s backoff, 1 s in-process budget, and (first test) no
 * retry or dead-letter topic named.
 */
describe("two deployments on one cluster", () => {
  const n = 60;

  async function twoDeployments(label: string, sharedRetryTopic: string | undefined) {
    const { topic, setup } = await scenario(admin, brokers, `accept-${label}`, { handoffTopics: "defaults" });
    const receiver = track(await startReceiver());
    receiver.behave(failFirstAttempt(503));
    const deployments = ["a", "b"].map((path) => {
      const groupId = unique(`accept-${label}-${path}`);
      const s: SidecarSetupWithDefaults = {
        ...setup,
        groupId,
        retryTopic: sharedRetryTopic,
        configs: [callbackConfig("acme", "orders", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/${path}` }])],
        // sidecarConfig shortens the in-process budget for other tests: put the default back.
        callbacks: { retry: { "in-process-budget": "1s" } },
      };
      return {
        path,
        groupId,
        topics: { ...defaultHandoffTopics(groupId), ...(sharedRetryTopic ? { retryTopic: sharedRetryTopic } : {}) },
        sidecar: SidecarProcess.start(`${label}-${path}`, sidecarConfig(s)),
      };
    });
    await Promise.all(deployments.map((d) => d.sidecar.waitReady()));
    // Nothing named but what the variant shares: the rest are the defaults named after each group.
    for (const d of deployments) {
      if (!sharedRetryTopic) expect(d.sidecar.callbacks.retry).not.toHaveProperty("topic");
      expect(d.sidecar.callbacks["dead-letter"]).not.toHaveProperty("topic");
    }

    const records = events(n, { prefix: label, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, records);
    // Accepted (2xx) requests only: the 503 first attempt and its retry are one delivery.
    const deliveries = new DeliveryLedger({ r: accepted(receiver) });
    const requests = new DeliveryLedger({ r: receiver });
    await waitFor(
      () =>
        `${n} accepted deliveries per deployment (have ${deployments.map((d) => deliveries.distinct((e) => e.target === `r/${d.path}`)).join(", ")})`,
      () => deployments.every((d) => deliveries.distinct((e) => e.target === `r/${d.path}`) >= n),
      90_000,
      200,
    );
    const metrics: MetricMap[] = [];
    for (const d of deployments) {
      metrics.push(
        await d.sidecar.metricsUntil(
          (m) =>
            `${d.path}: ${n} DELIVERED (have ${m.sum("callbacks_deliveries_total", { status: "DELIVERED" })})${sharedRetryTopic ? `, ${n} foreign retry records (have ${m.sum("callbacks_retry_records_ignored_total")})` : ""}`,
          (m) =>
            m.sum("callbacks_deliveries_total", { status: "DELIVERED" }) >= n &&
            (!sharedRetryTopic || m.sum("callbacks_retry_records_ignored_total", { reason: "foreign_origin" }) >= n),
          60_000,
        ),
      );
    }
    await sleep(1_500); // a second delivery, or a late dead letter, would show up now
    const final = await Promise.all(deployments.map((d) => d.sidecar.metrics()));

    const report = deliveries.report(`two-deployments-${label}`, [...expectEach(records, "r/a"), ...expectEach(records, "r/b")]);
    const perDeployment = deployments.map((d, i) => {
      const m = final[i] as MetricMap;
      const attempts = new Map<string, number>();
      for (const e of requests.entries().filter((x) => x.target === `r/${d.path}`))
        attempts.set(e.deliveryId, (attempts.get(e.deliveryId) ?? 0) + 1);
      return {
        path: d.path,
        requests: [...attempts.values()].reduce((a, b) => a + b, 0),
        attemptsPerDelivery: [...new Set(attempts.values())].sort(),
        delivered: m.sum("callbacks_deliveries_total", { status: "DELIVERED" }),
        failed: m.sum("callbacks_deliveries_total", { status: "FAILED" }),
        deadLetters: m.sum("callbacks_dead_letters_total"),
        retriesScheduled: m.sum("callbacks_retries_scheduled_total"),
        foreign: m.sum("callbacks_retry_records_ignored_total", { reason: "foreign_origin" }),
      };
    });
    const topicSizes = await Promise.all(
      deployments.map(async (d) => ({ retry: await sizeOf(d.topics.retryTopic), deadLetter: await sizeOf(d.topics.deadLetterTopic) })),
    );
    console.log(
      `two-deployments ${label}: ${JSON.stringify(perDeployment)}; topics ${JSON.stringify(deployments.map((d, i) => ({ ...d.topics, records: topicSizes[i] })))}`,
    );

    expect(report).toMatchObject({ sent: 2 * n, delivered: 2 * n, duplicated: 0, lost: 0, unexpected: 0, idChanged: 0 });
    for (const [i, d] of perDeployment.entries()) {
      // One 503, then one 2xx after the retry, for every delivery: exactly once after its retry.
      expect(d, d.path).toMatchObject({
        requests: 2 * n,
        attemptsPerDelivery: [2],
        delivered: n,
        failed: 0,
        deadLetters: 0,
        retriesScheduled: n,
        foreign: sharedRetryTopic ? n : 0,
      });
      expect(topicSizes[i]?.deadLetter, `${d.path}: records in ${deployments[i]?.topics.deadLetterTopic}`).toBe(0);
    }
    if (sharedRetryTopic) expect(topicSizes[0]?.retry).toBe(2 * n);
    else for (const s of topicSizes) expect(s.retry).toBe(n);

    for (const d of deployments) d.sidecar.kill("SIGTERM");
    for (const d of deployments) expect((await d.sidecar.waitExit(20_000)).code).toBe(0);
  }

  it("default retry and dead-letter topics (<group-id>.retry / .dead-letter): each delivers every event exactly once after its retry; no FAILED, no dead letter", async () => {
    await twoDeployments("default-topics", undefined);
  }, 150_000);

  it("both configured with the same retry.topic: each still delivers exactly once and leaves the other's retry records alone (counted as foreign_origin)", async () => {
    await twoDeployments("shared-retry", unique("accept-shared.retry"));
  }, 150_000);
});

/*
 * Rebalances mid-stream: 3,000 records on 6 partitions, a receiver answering after 20 ms, records
 * streamed at ~300/s. Duplicates are requests beyond the first of a delivery id; at most 1% allowed.
 */
describe("rebalance duplicates", () => {
  const N = 3_000;
  const BATCH = 30;
  const INTERVAL_MS = 100;
  const MAX_DUPLICATES = N / 100;

  function setupFor(label: string) {
    return (async () => {
      const { topic, setup } = await scenario(admin, brokers, `accept-${label}`, { partitions: 6 });
      const receiver = track(await startRecordingReceiver({ delayMs: 20 }));
      const config = sidecarConfig({
        ...setup,
        configs: [
          callbackConfig("acme", "orders", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/orders` }], {
            "max-attempts": 3,
            "backoff-ms": 50,
          }),
        ],
      });
      return {
        topic,
        receiver,
        config,
        records: events(N, { prefix: label, tenant: "acme", eventType: "OrderPlaced" }),
        ledger: new DeliveryLedger({ r: receiver }),
      };
    })();
  }

  it("a second replica joins the group after ~1/3 delivered: nothing lost, at most 1% delivered twice", async () => {
    const { topic, config, records, ledger } = await setupFor("join");
    const a = SidecarProcess.start("join-a", config);
    await a.waitReady();
    let b: SidecarProcess | undefined = undefined;
    // The stream slows down near its end until b is in the group, so the join lands mid-stream.
    const producing = produceStream(producer, topic, records, {
      batchSize: BATCH,
      intervalMs: (soFar) => (soFar >= N * 0.8 && (b === undefined || b.assignment(topic.name).length === 0) ? 1_000 : INTERVAL_MS),
    });
    await waitFor(
      () => `${N / 3} deliveries before the join (have ${ledger.distinct()})`,
      () => ledger.distinct() >= N / 3,
      60_000,
      10,
    );
    const atStart = ledger.distinct();
    b = SidecarProcess.start("join-b", config);
    const joinedB = b;
    await waitFor(
      () => `b assigned partitions (has ${joinedB.assignment(topic.name)})\n${joinedB.tail(10)}`,
      () => joinedB.assignment(topic.name).length > 0,
      90_000,
      100,
    );
    const atJoin = ledger.distinct();
    const produced = await producing;
    await waitFor(
      () => `all ${N} delivered (have ${ledger.distinct()})`,
      () => ledger.distinct() >= N,
      90_000,
      200,
    );
    await sleep(1_500);
    const [ma, mb] = await Promise.all([a.metrics(), b.metrics()]);
    const report = ledger.report("rebalance-join", expectEach(records, "r/orders"));
    const consumed = [ma, mb].map((m) => m.sum("callbacks_events_consumed_total", { topic: topic.name }));
    console.log(
      `rebalance-join: duplicates=${report.duplicated} of ${N} (${((100 * report.duplicated) / N).toFixed(2)}%); b started at ${atStart} delivered, in the group at ${atJoin}; ` +
        `a owns ${a.assignment(topic.name)}, b owns ${b.assignment(topic.name)}; consumed a=${consumed[0]} b=${consumed[1]}; ` +
        `skipped-as-finished logs a=${a.logs().filter((l) => l.msg === "skipped records the previous owner finished").length} b=${b.logs().filter((l) => l.msg === "skipped records the previous owner finished").length}; ` +
        `grace-over logs a=${a.logs().filter((l) => String(l.msg).startsWith("grace over")).length}`,
    );
    expect(produced).toHaveLength(N);
    expect(atJoin).toBeLessThan(N);
    expect(consumed[1]).toBeGreaterThan(0);
    expect(report.lost).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(report.idChanged).toBe(0);
    expect(report.duplicated).toBeLessThanOrEqual(MAX_DUPLICATES);

    a.kill("SIGTERM");
    b.kill("SIGTERM");
    expect((await a.waitExit(20_000)).code).toBe(0);
    expect((await b.waitExit(20_000)).code).toBe(0);
  }, 240_000);

  it("one of two replicas stops with SIGTERM after ~1/3 delivered: nothing lost, at most 1% delivered twice", async () => {
    const { topic, config, records, ledger } = await setupFor("leave");
    const a = SidecarProcess.start("leave-a", config);
    const b = SidecarProcess.start("leave-b", config);
    await Promise.all([a.waitReady(), b.waitReady()]);
    await waitFor(
      () => `both replicas own partitions (a ${a.assignment(topic.name)}, b ${b.assignment(topic.name)})`,
      () =>
        a.assignment(topic.name).length > 0 &&
        b.assignment(topic.name).length > 0 &&
        a.assignment(topic.name).length + b.assignment(topic.name).length === 6,
      60_000,
      200,
    );
    const ownedByA = a.assignment(topic.name);
    let aExited = false;
    const producing = produceStream(producer, topic, records, {
      batchSize: BATCH,
      // Slower near the end until a is gone, so the stop lands mid-stream.
      intervalMs: (soFar) => (soFar >= N * 0.8 && !aExited ? 1_000 : INTERVAL_MS),
    });
    await waitFor(
      () => `${N / 3} deliveries before the stop (have ${ledger.distinct()})`,
      () => ledger.distinct() >= N / 3,
      60_000,
      10,
    );
    const atStop = ledger.distinct();
    const consumedByA = (await a.metrics()).sum("callbacks_events_consumed_total", { topic: topic.name });
    a.kill("SIGTERM");
    const exitA = await a.waitExit(30_000);
    aExited = true;
    const atExit = ledger.distinct();
    const produced = await producing;
    await waitFor(
      () => `b owns all 6 partitions (has ${b.assignment(topic.name)})`,
      () => b.assignment(topic.name).length === 6,
      60_000,
      200,
    );
    await waitFor(
      () => `all ${N} delivered (have ${ledger.distinct()})`,
      () => ledger.distinct() >= N,
      90_000,
      200,
    );
    await sleep(1_500);
    const report = ledger.report("rebalance-sigterm", expectEach(records, "r/orders"));
    console.log(
      `rebalance-sigterm: duplicates=${report.duplicated} of ${N} (${((100 * report.duplicated) / N).toFixed(2)}%); a owned ${ownedByA}, consumed ${consumedByA} before SIGTERM; ` +
        `SIGTERM at ${atStop} delivered, a exited (code ${exitA.code}) at ${atExit}; ` +
        `grace-over logs a=${a.logs().filter((l) => String(l.msg).startsWith("grace over") || String(l.msg).includes("shutdown grace over")).length}; ` +
        `skipped-as-finished logs b=${b.logs().filter((l) => l.msg === "skipped records the previous owner finished").length}`,
    );
    expect(exitA.code).toBe(0);
    expect(produced).toHaveLength(N);
    expect(atExit).toBeLessThan(N);
    expect(report.lost).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(report.idChanged).toBe(0);
    expect(report.duplicated).toBeLessThanOrEqual(MAX_DUPLICATES);

    b.kill("SIGTERM");
    expect((await b.waitExit(20_000)).code).toBe(0);
  }, 240_000);
});
