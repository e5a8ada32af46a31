/**
 * Fault tests (and the grep for secrets in every output): the BUILT sidecar as a child
 * process against a real broker, with faults injected on the broker, the receivers, the group and
 * the records. Each test prints `FAULT-REPORT <name> sent=.. delivered=.. duplicated=.. lost=..`
 * (see test/support/traffic.ts). What the end-to-end tests already cover (SIGKILL of a single sidecar
 * and restart, refusing and black-holed endpoints with shortened retry settings, SIGTERM takeover)
 * is not repeated here.
 */
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Admin, Kafka, Producer } from "kafkajs";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { e2eSuite } from "../support/e2e-suite.js";
import { runCli, type CliResult } from "../support/cli.js";
import { LocalKafka } from "../support/kafka-broker.js";
import { refusedPort, startReceiver } from "../support/receiver.js";
import { MetricMap, SidecarProcess, sidecarConfig, callbackConfig } from "../support/sidecar-process.js";
import {
  DeliveryLedger,
  events,
  expectEach,
  produce,
  produceStream,
  sleep,
  startRecordingReceiver,
  testKafka,
  testProducer,
  unique,
  waitFor,
  type FaultReport,
  type OutRecord,
  type ProducedRecord,
  type TestTopic,
  scenario as sharedScenario,
} from "../support/traffic.js";
import { prng } from "../support/prng.js";

const e2e = e2eSuite();
const { brokers, track } = e2e;

const PYFLY_SECRET = "e2e-faults-pyfly-secret-5c21";

let kafka: Kafka;
let admin: Admin;
let producer: Producer;
beforeAll(() => void ({ kafka, admin, producer } = e2e));
let workDir: string;

/** A fresh topic, group and retry/dead-letter topics for one scenario (on another cluster: `on`, `onBrokers`). */
const scenario = (prefix: string, partitions = 3, on: Admin = admin, onBrokers: string[] = brokers) =>
  sharedScenario(on, onBrokers, prefix, { partitions });

/** A pyfly-signed config of `tenant` with one subscription per target. */
function tenantConfig(
  tenant: string,
  name: string,
  targets: { eventType: string; url: string }[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return callbackConfig(tenant, name, PYFLY_SECRET, targets, { "max-attempts": 3, "backoff-ms": 50, ...extra });
}

/** One receiver gets every record: let every record's delivery start at once (see sidecar.test.ts). */
const SINGLE_HOST = { kafka: { "max-in-flight": 64 }, http: { "max-connections-per-host": 64 } };

/** A config file for the CLI commands (replay, send, check-config). */
function writeConfig(name: string, callbacks: Record<string, unknown>): string {
  const path = join(workDir, `${name}.yml`);
  writeFileSync(path, stringify({ pyfly: { callbacks } }));
  return path;
}

/** Resident set size of a process in bytes (/proc/<pid>/status VmRSS). */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** Polls /metrics until `check` holds; returns the last scrape. */
async function metricsUntil(
  sidecar: SidecarProcess,
  what: (m: MetricMap) => string,
  check: (m: MetricMap) => boolean,
  timeoutMs: number,
): Promise<MetricMap> {
  // A scrape may time out (a sidecar under test can be unresponsive for a while): waitFor retries.
  let m = new MetricMap();
  await waitFor(
    () => what(m),
    async () => check((m = await sidecar.metrics())),
    timeoutMs,
    250,
  );
  return m;
}

/** A record as it sits in a topic, every header value kept (kafkajs repeats become arrays). */
interface RawRecord {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer[]>;
}

/** Reads `topic` from the beginning until `count` records arrived (or the timeout), headers raw. */
async function readRaw(client: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<RawRecord[]> {
  const consumer = client.consumer({
    groupId: unique("faults-reader"),
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 250,
  });
  const out: RawRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, Buffer[]> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) {
          if (v === undefined) continue;
          headers[k] = (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(String(x))));
        }
        out.push({ partition, offset: message.offset, key: message.key, value: message.value, headers });
      },
    });
    await waitFor(`${count} records in ${topic} (have ${out.length})`, () => out.length >= count, timeoutMs).catch(() => undefined);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

const headerOf = (r: RawRecord, name: string): string | undefined => r.headers[name]?.[0]?.toString("utf8");

/** Per second, how many requests arrived (from the first one): shows where a run slowed down. */
function perSecond(requests: { at: number }[]): string {
  if (requests.length === 0) return "";
  const t0 = requests[0]!.at;
  const buckets: number[] = [];
  for (const r of requests) {
    const i = Math.floor((r.at - t0) / 1000);
    buckets[i] = (buckets[i] ?? 0) + 1;
  }
  return Array.from(buckets, (x) => x ?? 0).join(" ");
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "faults-e2e-"));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("fault tests (built sidecar, real broker)", () => {
  it("broker stopped (SIGKILL) for ~15 s mid-stream and started again: /readyz 503 then 200, nothing lost", async () => {
    const broker = await LocalKafka.start();
    const client = testKafka(broker.brokers, "faults-outage");
    const outageAdmin = client.admin();
    let outageProducer = testProducer(client);
    try {
      await outageAdmin.connect();
      await outageProducer.connect();
      const { topic, setup } = await scenario("faults-outage", 3, outageAdmin, broker.brokers);
      // 50 ms per request and 64 in flight: ~1000 deliveries/s, so the stream and the consumer run
      // side by side and the crash lands with deliveries in flight and offsets not yet committed.
      const receiver = track(await startRecordingReceiver({ delayMs: 50 }));
      const sidecar = SidecarProcess.start(
        "outage",
        sidecarConfig({
          ...setup,
          configs: [tenantConfig("acme", "orders", [{ eventType: "OrderPlaced", url: `${receiver.url}/orders` }])],
          callbacks: SINGLE_HOST,
        }),
      );
      await sidecar.waitReady();
      const ledger = new DeliveryLedger({ r: receiver });

      const before = events(3000, { prefix: "before", tenant: "acme", eventType: "OrderPlaced" });
      let stopStream = false;
      const streaming = produceStream(outageProducer, topic, before, { batchSize: 50, intervalMs: 50, stop: () => stopStream });
      await waitFor(
        () => `600 deliveries before the outage (have ${ledger.distinct()})`,
        () => ledger.distinct() >= 600,
        60_000,
        10,
      );
      stopStream = true;
      const producedBefore = await streaming;

      const stoppedAt = Date.now();
      await broker.stop({ signal: "SIGKILL" });
      const atCrash = ledger.distinct();
      // Keep it down at least 15 s, and until /readyz has said 503 (or 30 s passed).
      const statuses: { at: number; status: number }[] = [];
      while (Date.now() - stoppedAt < 15_000 || (!statuses.some((s) => s.status === 503) && Date.now() - stoppedAt < 30_000)) {
        statuses.push({
          at: Date.now(),
          status: await sidecar.get("/readyz").then(
            (r) => r.status,
            () => 0,
          ),
        });
        expect((await sidecar.get("/healthz")).status).toBe(200);
        await sleep(250);
      }
      const first503 = statuses.find((s) => s.status === 503);
      const outageMs = Date.now() - stoppedAt;
      await broker.start();
      const restartedAt = Date.now();
      await sidecar.waitReady(90_000);
      const readyAgainMs = Date.now() - restartedAt;
      console.log(
        `broker-outage: ${producedBefore.length} records streamed before the crash, ${atCrash} delivered at the crash; ` +
          `/readyz 503 ${first503 ? `${first503.at - stoppedAt} ms` : "never"} after the crash; broker down ${outageMs} ms; ` +
          `/readyz 200 again ${readyAgainMs} ms after the broker was started`,
      );
      expect(first503, "/readyz never went 503 during the outage").toBeDefined();
      expect(sidecar.exit).toBeUndefined();

      // Keep producing after the restart (a fresh producer: the old one's connection died with the broker).
      await outageProducer.disconnect().catch(() => undefined);
      outageProducer = testProducer(client);
      await outageProducer.connect();
      const after = events(1500, { prefix: "after", tenant: "acme", eventType: "OrderPlaced" });
      const producedAfter = await produceStream(outageProducer, topic, after, { batchSize: 100, intervalMs: 50 });
      const all = [...producedBefore, ...producedAfter];
      await waitFor(
        () => `all ${all.length} delivered (have ${ledger.distinct()})`,
        () => ledger.distinct() >= all.length,
        90_000,
        200,
      );
      await sleep(1_000);
      const report = ledger.report("broker-outage", expectEach(all, "r/orders"));
      expect(report.lost).toBe(0);
      expect(report.unexpected).toBe(0);
      expect(report.idChanged).toBe(0);

      sidecar.kill("SIGTERM");
      expect((await sidecar.waitExit(20_000)).code).toBe(0);
    } finally {
      await outageProducer.disconnect().catch(() => undefined);
      await outageAdmin.disconnect().catch(() => undefined);
      await broker.destroy();
    }
  }, 180_000);

  it("a receiver refusing connections past every retry: breaker open (2), dead letters attempts_exhausted, replay by tenant and host delivers each once", async () => {
    const { topic, setup } = await scenario("faults-refused");
    const port = await refusedPort();
    const down = `http://127.0.0.1:${port}`;
    // 3 attempts, 300 ms apart: longer than the in-process budget (200 ms), so retries go through the
    // retry topic. While the breaker is open no attempt is spent: deliveries wait for its half-open
    // probe, so the recovery timeout is short here (2 s) for the attempts to run out in time.
    const configs = [
      tenantConfig("acme", "orders", [{ eventType: "OrderPlaced", url: `${down}/acme` }], { "backoff-ms": 300 }),
      tenantConfig("globex", "billing", [{ eventType: "OrderPlaced", url: `${down}/globex` }], { "backoff-ms": 300 }),
    ];
    const callbacks = sidecarConfig({ ...setup, configs, callbacks: { http: { "circuit-breaker": { "recovery-timeout": "2s" } } } });
    const sidecar = SidecarProcess.start("refused", callbacks);
    await sidecar.waitReady();
    const acme = events(300, { prefix: "acme", tenant: "acme", eventType: "OrderPlaced" });
    const globex = events(100, { prefix: "globex", tenant: "globex", eventType: "OrderPlaced" });
    await produce(producer, topic, [...acme, ...globex]);
    const total = acme.length + globex.length;

    let breakerOpenSeen = false;
    const m = await metricsUntil(
      sidecar,
      (x) =>
        `${total} dead letters (have ${x.sum("callbacks_dead_letters_total")}, breaker ${x.sum("callbacks_circuit_breaker_state", { target_host: `127.0.0.1:${port}` })})`,
      (x) => {
        if (x.sum("callbacks_circuit_breaker_state", { target_host: `127.0.0.1:${port}` }) === 2) breakerOpenSeen = true;
        return x.sum("callbacks_dead_letters_total") >= total;
      },
      60_000,
    );
    const breakerState = m.sum("callbacks_circuit_breaker_state", { target_host: `127.0.0.1:${port}` });
    console.log(
      `refused: breaker state ${breakerState}; attempts ${JSON.stringify(m.series("callbacks_delivery_attempts_total").map((s) => [s.labels.outcome, s.value]))}; ` +
        `retries scheduled ${m.sum("callbacks_retries_scheduled_total")}; dead letters ${m.sum("callbacks_dead_letters_total")}`,
    );
    expect(breakerOpenSeen).toBe(true);
    // Open, or half-open once nothing is left to probe it (2 s after the last failure).
    expect([1, 2]).toContain(breakerState);
    expect(m.sum("callbacks_dead_letters_total", { tenant: "acme", reason: "attempts_exhausted" })).toBe(acme.length);
    expect(m.sum("callbacks_dead_letters_total", { tenant: "globex", reason: "attempts_exhausted" })).toBe(globex.length);
    expect(m.sum("callbacks_dead_letters_total")).toBe(total);
    expect(m.sum("callbacks_deliveries_total", { status: "FAILED" })).toBe(total);
    expect(m.sum("callbacks_delivery_attempts_total", { target_host: `127.0.0.1:${port}`, outcome: "circuit_open" })).toBeGreaterThan(0);
    expect(m.sum("callbacks_retries_scheduled_total", { target_host: `127.0.0.1:${port}` })).toBeGreaterThan(0);

    const dead = await readRaw(kafka, setup.deadLetterTopic, total, 30_000);
    expect(dead).toHaveLength(total);
    const deadIds = new Map<string, string[]>(); // tenant -> delivery ids
    for (const d of dead) {
      expect(headerOf(d, "callback-reason")).toBe("attempts_exhausted");
      expect(headerOf(d, "callback-status")).toBe("FAILED");
      expect(headerOf(d, "callback-attempts")).toBe("3");
      expect(headerOf(d, "callback-last-error")).toMatch(/Circuit breaker is open|ECONNREFUSED|refused/i);
      const tenant = headerOf(d, "callback-tenant-id") as string;
      deadIds.set(tenant, [...(deadIds.get(tenant) ?? []), headerOf(d, "callback-delivery-id") as string]);
    }
    expect(new Set(deadIds.get("acme")).size).toBe(acme.length);
    expect(new Set(deadIds.get("globex")).size).toBe(globex.length);

    sidecar.kill("SIGTERM");
    expect((await sidecar.waitExit(20_000)).code).toBe(0);

    // The receiver is back, on the same port; replay acme's dead letters first, then globex's.
    const receiver = track(await startRecordingReceiver({ port }));
    const configFile = writeConfig("refused", callbacks);
    const dry = await runCli(["replay", "--config", configFile, "--dry-run", "--tenant", "acme", "--target-host", `127.0.0.1:${port}`], {
      timeoutMs: 60_000,
    });
    expect(dry.code, dry.stderr).toBe(0);
    expect(
      dry.stdout
        .trim()
        .split("\n")
        .filter((l) => l.includes('"dry_run":true')),
    ).toHaveLength(acme.length);
    expect(receiver.requests).toHaveLength(0);

    const replayAcme = await runCli(["replay", "--config", configFile, "--tenant", "acme", "--target-host", `127.0.0.1:${port}`], {
      timeoutMs: 60_000,
    });
    expect(replayAcme.code, replayAcme.stderr).toBe(0);
    const acmeSummary = JSON.parse(replayAcme.stdout.trim().split("\n").at(-1) as string) as { summary: Record<string, number> };
    expect(acmeSummary.summary).toMatchObject({ read: total, matched: acme.length, delivered: acme.length, failed: 0 });
    // The filter held: nothing of globex's went out.
    expect(receiver.requests.filter((r) => r.url === "/globex")).toHaveLength(0);

    const replayGlobex = await runCli(["replay", "--config", configFile, "--tenant", "globex", "--target-host", "127.0.0.1"], {
      timeoutMs: 60_000,
    });
    expect(replayGlobex.code, replayGlobex.stderr).toBe(0);
    const globexSummary = JSON.parse(replayGlobex.stdout.trim().split("\n").at(-1) as string) as { summary: Record<string, number> };
    expect(globexSummary.summary).toMatchObject({ matched: globex.length, delivered: globex.length, failed: 0 });

    // Every dead letter delivered once, with its original delivery id, signed.
    const got = (path: string) => receiver.requests.filter((r) => r.url === path).map((r) => String(r.headers["x-pyfly-delivery-id"]));
    expect(got("/acme").sort()).toEqual([...(deadIds.get("acme") ?? [])].sort());
    expect(got("/globex").sort()).toEqual([...(deadIds.get("globex") ?? [])].sort());
    for (const r of receiver.requests) {
      expect(r.headers["x-pyfly-signature"]).toBe(`sha256=${createHmac("sha256", PYFLY_SECRET).update(r.body).digest("hex")}`);
    }
    const report = new DeliveryLedger({ r: receiver }).report("refused-breaker-replay", [
      ...expectEach(acme, "r/acme"),
      ...expectEach(globex, "r/globex"),
    ]);
    expect(report.lost).toBe(0);
    expect(report.duplicated).toBe(0);
    expect(report.unexpected).toBe(0);
  }, 150_000);

  it("two sidecars in one group, one SIGKILLed mid-stream: its partitions move to the survivor, nothing lost", async () => {
    const { topic, setup } = await scenario("faults-group-kill", 6);
    const receiver = track(await startRecordingReceiver({ delayMs: 2 }));
    const config = sidecarConfig({
      ...setup,
      configs: [tenantConfig("acme", "orders", [{ eventType: "OrderPlaced", url: `${receiver.url}/orders` }])],
      callbacks: SINGLE_HOST,
    });
    const a = SidecarProcess.start("kill-a", config);
    const b = SidecarProcess.start("kill-b", config);
    await Promise.all([a.waitReady(), b.waitReady()]);
    const assignment = (s: SidecarProcess): number[] => {
      const joins = s.logs().filter((l) => l.msg === "joined consumer group" && l.consumer === "events");
      return ((joins.at(-1)?.assignment as Record<string, number[]> | undefined)?.[topic.name] ?? []).slice().sort();
    };
    await waitFor(
      () => `both sidecars to own partitions (a ${assignment(a)}, b ${assignment(b)})`,
      () => assignment(a).length > 0 && assignment(b).length > 0 && assignment(a).length + assignment(b).length === 6,
      60_000,
      200,
    );
    const ownedByA = assignment(a);
    console.log(`group-kill: a owns ${ownedByA.join(",")}, b owns ${assignment(b).join(",")}`);

    const records = events(3000, { prefix: "gk", tenant: "acme", eventType: "OrderPlaced" });
    const ledger = new DeliveryLedger({ r: receiver });
    const producing = produceStream(producer, topic, records, { batchSize: 100, intervalMs: 100 });
    await waitFor(
      () => `800 deliveries before the kill (have ${ledger.distinct()})`,
      () => ledger.distinct() >= 800,
      60_000,
      10,
    );
    const consumedByA = (await a.metrics()).sum("callbacks_events_consumed_total", { topic: topic.name });
    a.kill("SIGKILL");
    const killedAt = Date.now();
    expect((await a.waitExit(10_000)).signal).toBe("SIGKILL");
    const atKill = ledger.distinct();
    const produced: ProducedRecord[] = await producing;
    expect(produced).toHaveLength(records.length);

    await waitFor(
      () => `b owns all 6 partitions (has ${assignment(b)})`,
      () => assignment(b).length === 6,
      60_000,
      200,
    );
    const takeoverMs = Date.now() - killedAt;
    await waitFor(
      () => `all ${records.length} delivered (have ${ledger.distinct()})`,
      () => ledger.distinct() >= records.length,
      60_000,
      200,
    );
    await sleep(1_000);
    const report = ledger.report("group-sigkill", expectEach(records, "r/orders"));
    console.log(
      `group-kill: a consumed ${consumedByA} before the kill; ${atKill} delivered at the kill; b owned all partitions ${takeoverMs} ms after it`,
    );
    expect(consumedByA).toBeGreaterThan(0);
    expect(report.lost).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(report.idChanged).toBe(0);
    // Records of a's partitions produced after the kill were delivered, so by b.
    const afterKill = produced.filter((r) => ownedByA.includes(r.partition)).slice(-50);
    const delivered = new Set(ledger.entries().map((e) => e.record));
    expect(afterKill.every((r) => delivered.has(r.id))).toBe(true);

    b.kill("SIGTERM");
    expect((await b.waitExit(20_000)).code).toBe(0);
  }, 150_000);
});

type Outcome =
  "delivered" | "no_subscription" | "missing_tenant" | "missing_event_type" | "invalid_header" | "invalid_json" | "unknown_tenant";

interface HostileKind {
  kind: string;
  count: number;
  outcome: Outcome;
  /** The dead letter's value is cut (the original is larger than ~900 KB). */
  truncated?: boolean;
  /** Carried headers too large for the dead letter are dropped. */
  dropped?: boolean;
  make(id: string, i: number): Omit<OutRecord, "id">;
}

const KB = 1024;
const MB = 1024 * KB;

describe("hostile records", () => {
  it("thousands of hostile records among valid ones: no crash, every valid one delivered, each bad one dead-lettered with its reason and counted", async () => {
    const random = prng(0x5eed);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const H = { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" };
    const json = (id: string, extra: Record<string, unknown> = {}) => JSON.stringify({ id, ...extra });
    const nested = (depth: number, open: string, close: string, inner = "1") => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
    const kinds: HostileKind[] = [
      // Valid, however odd: each must be delivered.
      { kind: "plain", count: 1500, outcome: "delivered", make: (id) => ({ key: id, value: json(id), headers: H }) },
      {
        kind: "junk-utf8-other-header",
        count: 50,
        outcome: "delivered",
        make: (id) => ({ value: json(id), headers: { ...H, "x-trace": Buffer.from([0xff, 0xfe, 0xc3, 0x28]) } }),
      },
      {
        kind: "dup-tenant-same",
        count: 50,
        outcome: "delivered",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": ["acme", "acme"], "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "crlf-other-header",
        count: 50,
        outcome: "delivered",
        make: (id) => ({ value: json(id), headers: { ...H, "x-note": "a\r\nX-Injected: yes\r\n\r\nGET / HTTP/1.1" } }),
      },
      {
        kind: "huge-other-header",
        count: 20,
        outcome: "delivered",
        make: (id) => ({ value: json(id), headers: { ...H, "x-blob": "b".repeat(100 * KB) } }),
      },
      {
        kind: "upper-case-names",
        count: 50,
        outcome: "delivered",
        make: (id) => ({ value: json(id), headers: { "X-Tenant-Id": "acme", "X-EVENT-TYPE": "OrderPlaced" } }),
      },
      {
        kind: "cloudevents",
        count: 50,
        outcome: "delivered",
        make: (id) => ({ value: json(id), headers: { ce_tenantid: "acme", ce_type: "OrderPlaced", ce_specversion: "1.0", ce_id: id } }),
      },
      {
        kind: "unicode",
        count: 50,
        outcome: "delivered",
        make: (id) => ({ value: json(id, { s: 'Zoë \u2603 \ud834\udd1e \u0000 "q" \\' }), headers: H }),
      },
      {
        kind: "deep-400",
        count: 20,
        outcome: "delivered",
        make: (id) => ({ value: `{"id":"${id}","d":${nested(400, "[", "]")}}`, headers: H }),
      },
      {
        kind: "multi-mb-valid",
        count: 3,
        outcome: "delivered",
        make: (id) => ({ value: json(id, { blob: "v".repeat(3 * MB) }), headers: H }),
      },
      // Tenant without a subscription for the type: counted, not dead-lettered.
      {
        kind: "unsubscribed-type",
        count: 50,
        outcome: "no_subscription",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": "acme", "x-event-type": "Unsubscribed" } }),
      },
      // Bad: each dead-lettered with its reason.
      {
        kind: "random-bytes",
        count: 100,
        outcome: "invalid_json",
        make: () => ({ value: Buffer.concat([Buffer.from([0xff]), bytes(1 + Math.floor(random() * 2000))]), headers: H }),
      },
      {
        kind: "random-text",
        count: 50,
        outcome: "invalid_json",
        make: () => ({
          value: `{${Array.from({ length: 50 }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join("")}`,
          headers: H,
        }),
      },
      {
        kind: "invalid-utf8-value",
        count: 50,
        outcome: "invalid_json",
        make: (id) => ({
          value: Buffer.concat([Buffer.from(`{"id":"${id}","s":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
          headers: H,
        }),
      },
      {
        kind: "utf8-surrogate-value",
        count: 30,
        outcome: "invalid_json",
        make: (id) => ({
          value: Buffer.concat([Buffer.from(`{"id":"${id}","s":"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
          headers: H,
        }),
      },
      {
        kind: "invalid-utf8-tenant",
        count: 50,
        outcome: "invalid_header",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": Buffer.from([0x61, 0xff, 0x63]), "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "invalid-utf8-type",
        count: 30,
        outcome: "invalid_header",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": "acme", "x-event-type": Buffer.from([0x4f, 0xc0, 0xaf]) } }),
      },
      {
        kind: "missing-tenant",
        count: 50,
        outcome: "missing_tenant",
        make: (id) => ({ value: json(id), headers: { "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "missing-type",
        count: 50,
        outcome: "missing_event_type",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": "acme" } }),
      },
      { kind: "no-headers", count: 50, outcome: "missing_tenant", make: (id) => ({ value: json(id) }) },
      {
        kind: "blank-tenant",
        count: 30,
        outcome: "missing_tenant",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": " \t ", "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "dup-tenant-differs",
        count: 50,
        outcome: "invalid_header",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": ["acme", "globex"], "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "dup-type-by-case",
        count: 30,
        outcome: "invalid_header",
        make: (id) => ({ value: json(id), headers: { ...H, "X-Event-Type": "OrderCancelled" } }),
      },
      {
        kind: "huge-tenant",
        count: 20,
        outcome: "invalid_header",
        dropped: true,
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": `acme${"t".repeat(100 * KB)}`, "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "crlf-tenant",
        count: 50,
        outcome: "invalid_header",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": "acme\r\nX-Injected: 1", "x-event-type": "OrderPlaced" } }),
      },
      {
        kind: "crlf-type",
        count: 30,
        outcome: "invalid_header",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": "acme", "x-event-type": "OrderPlaced\r\n\r\nX-Injected: 1" } }),
      },
      { kind: "null-value", count: 30, outcome: "invalid_json", make: (id) => ({ key: id, value: null, headers: H }) },
      { kind: "empty-value", count: 20, outcome: "invalid_json", make: () => ({ value: "", headers: H }) },
      {
        kind: "unknown-tenant",
        count: 50,
        outcome: "unknown_tenant",
        make: (id) => ({ value: json(id), headers: { "x-tenant-id": "nobody", "x-event-type": "OrderPlaced" } }),
      },
      { kind: "deep-100k-arrays", count: 10, outcome: "invalid_json", make: () => ({ value: nested(100_000, "[", "]"), headers: H }) },
      { kind: "deep-100k-objects", count: 10, outcome: "invalid_json", make: () => ({ value: nested(100_000, '{"a":', "}"), headers: H }) },
      {
        kind: "multi-mb-random",
        count: 3,
        outcome: "invalid_json",
        truncated: true,
        make: () => ({ value: Buffer.concat([Buffer.from([0xff]), bytes(2 * MB)]), headers: H }),
      },
      {
        kind: "multi-mb-deep",
        count: 2,
        outcome: "invalid_json",
        truncated: true,
        make: () => ({ value: nested(1_500_000, "[", "]"), headers: H }),
      },
      {
        kind: "bad-json-huge-header",
        count: 20,
        outcome: "invalid_json",
        dropped: true,
        make: () => ({ value: "not json", headers: { ...H, "x-blob": "h".repeat(100 * KB) } }),
      },
      {
        kind: "bad-json-many-headers",
        count: 10,
        outcome: "invalid_json",
        dropped: true,
        make: () => ({
          value: "{]",
          headers: { ...H, ...Object.fromEntries(Array.from({ length: 200 }, (_, j) => [`x-h${j}`, "m".repeat(KB)])) },
        }),
      },
    ];
    const all: (OutRecord & { kind: HostileKind })[] = [];
    for (const k of kinds) for (let i = 0; i < k.count; i++) all.push({ id: `${k.kind}-${i}`, ...k.make(`${k.kind}-${i}`, i), kind: k });
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }

    // The event topic takes multi-megabyte records; what the sidecar writes stays under 1 MB.
    const name = unique("faults-hostile");
    await admin.createTopics({
      topics: [
        { topic: name, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: "max.message.bytes", value: String(32 * MB) }] },
      ],
      waitForLeaders: true,
    });
    const topic: TestTopic = { name, partitions: 3 };
    const setup = {
      brokers,
      groupId: unique("faults-hostile-group"),
      topics: [name],
      retryTopic: `${name}.retry`,
      deadLetterTopic: `${name}.dlq`,
    };
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "hostile",
      sidecarConfig({
        ...setup,
        configs: [tenantConfig("acme", "orders", [{ eventType: "OrderPlaced", url: `${receiver.url}/orders` }])],
        callbacks: SINGLE_HOST,
      }),
    );
    await sidecar.waitReady();
    const produced = await produce(producer, topic, all, 50);
    const byCoordinates = new Map(produced.map((r, i) => [`${r.partition}:${r.offset}`, all[i]!]));
    const count = (o: Outcome) => all.filter((r) => r.kind.outcome === o).length;
    const valid = all.filter((r) => r.kind.outcome === "delivered");
    const deadLettered = all.filter((r) => r.kind.outcome !== "delivered" && r.kind.outcome !== "no_subscription");
    console.log(
      `hostile: ${all.length} records (${valid.length} valid, ${deadLettered.length} to dead-letter, ${count("no_subscription")} without subscription)`,
    );

    const ledger = new DeliveryLedger({ r: receiver });
    const m = await metricsUntil(
      sidecar,
      (x) =>
        `every record final: consumed ${x.sum("callbacks_events_consumed_total")}/${all.length}, delivered ${x.sum("callbacks_deliveries_total", { status: "DELIVERED" })}/${valid.length}, ` +
        `dead letters ${x.sum("callbacks_dead_letters_total")}/${deadLettered.length}\n${sidecar.tail(10)}`,
      (x) =>
        x.sum("callbacks_events_consumed_total") >= all.length &&
        x.sum("callbacks_deliveries_total", { status: "DELIVERED" }) >= valid.length &&
        x.sum("callbacks_dead_letters_total") >= deadLettered.length,
      90_000,
    );
    await sleep(500);

    // No crash.
    expect(sidecar.exit).toBeUndefined();
    expect((await sidecar.get("/healthz")).status).toBe(200);
    expect((await sidecar.get("/readyz")).status).toBe(200);
    const troubles = sidecar
      .logs()
      .filter((l) => ["consumer crashed", "record left unfinished", "write to Kafka refused; will retry"].includes(String(l.msg)));
    expect(troubles.map((l) => `${l.msg}: ${String(l.err)}`)).toEqual([]);

    // Every valid one delivered, nothing else, nothing smuggled into the request headers.
    const report = ledger.report("hostile-records", expectEach(valid, "r/orders"));
    expect(report.lost).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(receiver.requests.filter((r) => Object.keys(r.headers).some((h) => h.startsWith("x-injected")))).toHaveLength(0);
    expect(receiver.requests.filter((r) => r.body.length > 3 * MB)).toHaveLength(3);

    // Counted, by reason.
    for (const reason of [
      "missing_tenant",
      "missing_event_type",
      "invalid_header",
      "invalid_json",
      "unknown_tenant",
      "no_subscription",
    ] as const) {
      expect(m.sum("callbacks_events_skipped_total", { reason }), `skipped ${reason}`).toBe(count(reason));
      if (reason !== "no_subscription")
        expect(m.sum("callbacks_dead_letters_total", { reason }), `dead letters ${reason}`).toBe(count(reason));
    }
    expect(m.sum("callbacks_events_consumed_total", { topic: name })).toBe(all.length);
    expect(m.sum("callbacks_deliveries_total", { status: "DELIVERED" })).toBe(valid.length);
    expect(m.sum("callbacks_deliveries_total", { status: "FAILED" })).toBe(0);

    // Dead-lettered, each with its own reason, its bytes (cut above ~900 KB) and its headers (too large ones dropped).
    const dead = await readRaw(kafka, setup.deadLetterTopic, deadLettered.length, 60_000);
    expect(dead).toHaveLength(deadLettered.length);
    const wrong: string[] = [];
    const seen = new Set<string>();
    for (const d of dead) {
      const source = JSON.parse(headerOf(d, "callback-source") ?? "{}") as { topic?: string; partition?: number; offset?: string };
      const original = byCoordinates.get(`${source.partition}:${source.offset}`);
      if (source.topic !== name || !original) {
        wrong.push(`unknown source ${headerOf(d, "callback-source")}`);
        continue;
      }
      seen.add(original.id);
      const { kind } = original;
      const problem = (what: string) => wrong.push(`${original.id}: ${what}`);
      if (headerOf(d, "callback-reason") !== kind.outcome) problem(`reason ${headerOf(d, "callback-reason")}, expected ${kind.outcome}`);
      if (headerOf(d, "callback-status") !== "UNDISPATCHABLE") problem(`status ${headerOf(d, "callback-status")}`);
      if (!headerOf(d, "callback-last-error")) problem("no callback-last-error");
      const originalBytes = original.value === null ? Buffer.alloc(0) : Buffer.from(original.value);
      const value = d.value ?? Buffer.alloc(0);
      if (kind.truncated) {
        if (headerOf(d, "callback-value-truncated") !== String(originalBytes.length))
          problem(`callback-value-truncated ${headerOf(d, "callback-value-truncated")}`);
        if (value.length !== 900 * KB || !value.equals(originalBytes.subarray(0, 900 * KB)))
          problem(`truncated value of ${value.length} bytes is not the original's first 900 KB`);
      } else {
        if (headerOf(d, "callback-value-truncated") !== undefined) problem("callback-value-truncated on a small value");
        if (!value.equals(originalBytes)) problem("value differs from the original");
      }
      const dropped = Number(headerOf(d, "callback-headers-dropped") ?? 0);
      if (kind.dropped ? dropped < 1 : dropped !== 0) problem(`callback-headers-dropped ${dropped}`);
      // Carried headers keep their bytes (invalid UTF-8 included) and every value of a repeat is reduced to one.
      for (const [h, v] of Object.entries(original.headers ?? {})) {
        const carried = d.headers[h];
        const first = Array.isArray(v) ? v[0]! : v;
        if (Buffer.byteLength(first) + Buffer.byteLength(h) > 8 * KB) continue;
        if (kind.kind === "bad-json-many-headers" && /^x-h\d+$/.test(h)) continue;
        if (!carried || !carried[0]!.equals(Buffer.from(first))) problem(`header ${h} not carried as it was`);
      }
    }
    const byReason = (list: string[]) => Object.fromEntries([...new Set(list)].sort().map((r) => [r, list.filter((x) => x === r).length]));
    console.log(`hostile: dead letters by reason ${JSON.stringify(byReason(dead.map((d) => headerOf(d, "callback-reason") ?? "?")))}`);
    expect(byReason(dead.map((d) => headerOf(d, "callback-reason") ?? "?"))).toEqual(byReason(deadLettered.map((r) => r.kind.outcome)));
    expect(wrong.slice(0, 20)).toEqual([]);
    expect(seen.size).toBe(deadLettered.length);

    sidecar.kill("SIGTERM");
    expect((await sidecar.waitExit(20_000)).code).toBe(0);
  }, 150_000);
});

describe("hostile records: large keys", () => {
  // A key of a few hundred KB once blocked the event loop for seconds per record: kafkajs' murmur2
  // is super-linear in the key length (192 KB: 5.5 s), and the key was carried into dead letters
  // and retry records. Keys above 1 KB are now replaced by their SHA-256 in what we write.
  it("a record with a 192 KB key is dead-lettered without stalling the sidecar: /healthz keeps answering within 1 s", async () => {
    const { topic, setup } = await scenario("faults-bigkey");
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "bigkey",
      sidecarConfig({
        ...setup,
        configs: [tenantConfig("acme", "orders", [{ eventType: "OrderPlaced", url: `${receiver.url}/orders` }])],
        callbacks: SINGLE_HOST,
      }),
    );
    await sidecar.waitReady();
    const valid = events(200, { prefix: "bk", tenant: "acme", eventType: "OrderPlaced" });
    const H = { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" };
    const bad: OutRecord[] = [{ id: "bigkey", key: "k".repeat(192 * KB), value: "not json", headers: H }];
    const ledger = new DeliveryLedger({ r: receiver });
    // Probe /healthz from before the records are produced until every record is final.
    const latencies: number[] = [];
    let done = false;
    const probing = (async () => {
      while (!done) {
        const t = Date.now();
        const status = await sidecar.get("/healthz").then(
          (r) => r.status,
          () => 0,
        );
        latencies.push(status === 200 ? Date.now() - t : 5_000);
        await sleep(50);
      }
    })();
    await produce(producer, topic, [...valid.slice(0, 100), ...bad, ...valid.slice(100)]);
    const m = await metricsUntil(
      sidecar,
      (x) =>
        `every record final (deliveries ${x.sum("callbacks_deliveries_total")}/${valid.length}, skipped ${x.sum("callbacks_events_skipped_total")})`,
      (x) => x.sum("callbacks_deliveries_total") >= valid.length && x.sum("callbacks_dead_letters_total", { reason: "invalid_json" }) >= 1,
      60_000,
    ).finally(() => (done = true));
    await probing;
    const report = ledger.report("hostile-big-keys", expectEach(valid, "r/orders"));
    console.log(
      `big-keys: slowest /healthz ${Math.max(...latencies)} ms over ${latencies.length} probes; healthy deliveries FAILED ${m.sum("callbacks_deliveries_total", { status: "FAILED" })}, ` +
        `attempts timed out ${m.sum("callbacks_delivery_attempts_total", { outcome: "timeout" })}, breaker opened ${m.sum("callbacks_circuit_breaker_transitions_total", { state: "open" })} times`,
    );
    expect(report.lost).toBe(0);
    expect(Math.max(...latencies)).toBeLessThan(1_000);
  }, 120_000);
});

describe("hostile records: a dead letter larger than Kafka takes", () => {
  // A dead letter made too large by a long key was refused by Kafka and, retried at the head of
  // the publisher's queue, held back every hand-off behind it. Every record we write is now bounded:
  // value cut to 900 KB, carried headers to 64 KB, key to 1 KB, error text to 1 KB.
  it("a dead letter made too large by its key does not hold back the other dead letters and deliveries", async () => {
    const name = unique("faults-bigdlq");
    await admin.createTopics({
      topics: [
        { topic: name, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: "max.message.bytes", value: String(32 * MB) }] },
      ],
      waitForLeaders: true,
    });
    const setup = {
      brokers,
      groupId: unique("faults-bigdlq-group"),
      topics: [name],
      retryTopic: `${name}.retry`,
      deadLetterTopic: `${name}.dlq`,
    };
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "bigdlq",
      sidecarConfig({
        ...setup,
        configs: [tenantConfig("acme", "orders", [{ eventType: "OrderPlaced", url: `${receiver.url}/orders` }])],
        callbacks: SINGLE_HOST,
      }),
    );
    await sidecar.waitReady();
    const H = { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" };
    // 8 carried headers of ~7.9 KB: each under the 8 KB cap, together under the 64 KB one.
    const carried = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`x-carried-${i}`, "c".repeat(7_900)]));
    const big: OutRecord = {
      id: "big",
      key: "k".repeat(100 * KB),
      value: Buffer.concat([Buffer.from([0xff]), Buffer.alloc(2 * MB, 0xfe)]),
      headers: { ...H, ...carried },
      partition: 0,
    };
    const small: OutRecord[] = Array.from({ length: 50 }, (_, i) => ({ id: `small-${i}`, value: "not json", headers: H }));
    const valid = events(100, { prefix: "bd", tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, { name, partitions: 3 }, [big, ...small, ...valid]);
    const ledger = new DeliveryLedger({ r: receiver });
    let m = new MetricMap();
    await waitFor(
      () => "",
      async () => {
        m = await sidecar.metrics();
        return m.sum("callbacks_dead_letters_total") >= small.length + 1 && ledger.distinct() >= valid.length;
      },
      20_000,
      500,
    ).catch(() => undefined);
    const report = ledger.report("hostile-oversized-dead-letter", expectEach(valid, "r/orders"));
    const refused = sidecar.logs().filter((l) => l.msg === "write to Kafka refused; will retry").length;
    console.log(
      `oversized-dead-letter: dead letters written ${m.sum("callbacks_dead_letters_total")} of ${small.length + 1}; refused writes logged ${refused}`,
    );
    expect(m.sum("callbacks_dead_letters_total")).toBeGreaterThanOrEqual(small.length);
    expect(report.lost).toBe(0);
  }, 90_000);
});

describe("secrets never appear", () => {
  it("an end-to-end run with pyfly and standard-webhooks secrets: not in logs, /executions, /metrics, /readyz, the retry and dead-letter topics, or any CLI output", async () => {
    const PYFLY = "faults-pyfly-secret-Xq7Zp2Lm9";
    const WH_KEY = "faults-whsec-key-Kd83nQz1-32byte";
    const WH_ROTATED_KEY = "faults-whsec-rotated-Mw5Tb0-key!";
    const WH = `whsec_${Buffer.from(WH_KEY).toString("base64")}`;
    const WH_ROTATED = `whsec_${Buffer.from(WH_ROTATED_KEY).toString("base64")}`;
    const TOKEN = "faults-subscription-token-Vb61Rr";
    const NOT_WHSEC = "faults-not-a-whsec-secret-Jp4Hq";
    const ON_PYFLY = "faults-additional-on-pyfly-Zz9Ke";
    const secrets: Record<string, string> = {
      pyfly: PYFLY,
      whsec: WH,
      "whsec base64": WH.slice("whsec_".length),
      "whsec key": WH_KEY,
      "rotated whsec": WH_ROTATED,
      "rotated base64": WH_ROTATED.slice("whsec_".length),
      "rotated key": WH_ROTATED_KEY,
      "subscription header": TOKEN,
      "bad standard-webhooks secret": NOT_WHSEC,
      "additional secret on pyfly": ON_PYFLY,
    };

    const { topic, setup } = await scenario("faults-secrets");
    const ok = track(await startReceiver());
    const reject = track(await startReceiver({ kind: "respond", status: 400 }));
    const flaky = track(await startReceiver());
    const firstSeen = new Set<string>();
    flaky.behave((req) => {
      const id = String(req.headers["x-pyfly-delivery-id"]);
      if (firstSeen.has(id)) return { kind: "respond", status: 200 };
      firstSeen.add(id);
      return { kind: "respond", status: 503 };
    });
    const refused = `http://127.0.0.1:${await refusedPort()}`;
    const env = { ACME_WEBHOOK_SECRET: PYFLY, ADMIN_TOKEN: "faults-executions-token-Rt5Wq8Nv2" };
    const configs = [
      {
        "tenant-id": "acme",
        name: "orders",
        secret: "${ACME_WEBHOOK_SECRET}",
        "max-attempts": 2,
        "backoff-ms": 300,
        subscriptions: [
          { "event-type": "OrderPlaced", "target-url": `${ok.url}/acme`, headers: { Authorization: `Bearer ${TOKEN}` } },
          { "event-type": "OrderPlaced", "target-url": `${flaky.url}/acme` },
          { "event-type": "OrderPlaced", "target-url": `${reject.url}/acme` },
          { "event-type": "OrderPlaced", "target-url": `${refused}/acme` },
        ],
      },
      {
        "tenant-id": "globex",
        name: "invoices",
        "signing-scheme": "standard-webhooks",
        secret: WH,
        "additional-secrets": [WH_ROTATED],
        "max-attempts": 2,
        "backoff-ms": 300,
        subscriptions: [
          { "event-type": "InvoicePaid", "target-url": `${ok.url}/globex` },
          { "event-type": "InvoicePaid", "target-url": `${flaky.url}/globex` },
          { "event-type": "InvoicePaid", "target-url": `${reject.url}/globex` },
        ],
      },
    ];
    // /executions is off by default; on here (payloads too) so its output is searched, behind a token that is a secret as well.
    const ADMIN_TOKEN = "faults-executions-token-Rt5Wq8Nv2";
    secrets["executions token"] = ADMIN_TOKEN;
    const callbacks = sidecarConfig({
      ...setup,
      configs,
      // The refused target's deliveries wait for each half-open probe (no attempt on an open
      // breaker): a short recovery timeout lets their two attempts run out within the test.
      callbacks: {
        "log-level": "debug",
        http: { "circuit-breaker": { "recovery-timeout": "1s" } },
        server: { executions: { enabled: true, token: "${ADMIN_TOKEN}", "include-payloads": true } },
      },
    });
    const sidecar = SidecarProcess.start("secrets", callbacks, env);
    await sidecar.waitReady();
    const acme = events(20, { prefix: "sa", tenant: "acme", eventType: "OrderPlaced" });
    const globex = events(20, { prefix: "sg", tenant: "globex", eventType: "InvoicePaid" });
    const bad: OutRecord[] = Array.from({ length: 5 }, (_, i) => ({
      id: `sb-${i}`,
      value: "{not json",
      headers: { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" },
    }));
    await produce(producer, topic, [...acme, ...globex, ...bad]);
    // 7 deliveries per pair of records: ok and flaky delivered, reject final_status, refused attempts_exhausted.
    const finals = acme.length * 4 + globex.length * 3;
    const deadCount = acme.length * 2 + globex.length + bad.length;
    await metricsUntil(
      sidecar,
      (m) =>
        `${finals} final deliveries (have ${m.sum("callbacks_deliveries_total")}), ${deadCount} dead letters (have ${m.sum("callbacks_dead_letters_total")})`,
      (m) => m.sum("callbacks_deliveries_total") >= finals && m.sum("callbacks_dead_letters_total") >= deadCount,
      60_000,
    );
    const outputs: Record<string, string> = {};
    const port = await sidecar.adminPort();
    expect((await fetch(`http://127.0.0.1:${port}/executions`)).status).toBe(401);
    for (const path of [
      "/executions?limit=1000",
      "/executions?status=FAILED&limit=1000",
      "/executions?tenant=globex&limit=1000",
      "/metrics",
      "/readyz",
      "/healthz",
    ]) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
        signal: AbortSignal.timeout(5_000),
      });
      expect(res.status, path).toBe(200);
      outputs[`GET ${path}`] = await res.text();
    }
    expect(JSON.parse(outputs["GET /executions?status=FAILED&limit=1000"] as string)).toHaveLength(acme.length * 2 + globex.length);
    const flatten = (records: RawRecord[]) =>
      records
        .map((r) =>
          [
            r.key?.toString("latin1") ?? "",
            r.value?.toString("latin1") ?? "",
            ...Object.entries(r.headers).flatMap(([k, vs]) => [k, ...vs.map((v) => v.toString("latin1"))]),
          ].join("\n"),
        )
        .join("\n");
    const dead = await readRaw(kafka, setup.deadLetterTopic, deadCount, 30_000);
    expect(dead).toHaveLength(deadCount);
    const retries = await readRaw(kafka, setup.retryTopic, acme.length * 2 + globex.length, 30_000);
    expect(retries.length).toBeGreaterThanOrEqual(acme.length * 2 + globex.length);
    outputs["dead-letter topic"] = flatten(dead);
    outputs["retry topic"] = flatten(retries);
    sidecar.kill("SIGTERM");
    expect((await sidecar.waitExit(20_000)).code).toBe(0);
    outputs["run stdout"] = sidecar.stdout;
    outputs["run stderr"] = sidecar.stderr;
    expect(sidecar.logs().some((l) => l.msg === "delivery failed; written to the dead-letter topic")).toBe(true);

    // The signatures the receivers saw: they must not be anywhere either.
    const signatures = [...ok.requests, ...flaky.requests, ...reject.requests].flatMap((r) => {
      const pyfly = String(r.headers["x-pyfly-signature"] ?? "").replace(/^sha256=/, "");
      const wh = String(r.headers["webhook-signature"] ?? "")
        .split(" ")
        .map((s) => s.replace(/^v1,/, ""));
      return [pyfly, ...wh].filter((s) => s.length >= 20);
    });
    expect(signatures.length).toBeGreaterThan(100);
    // Sanity: the subscription header and both standard-webhooks keys really were used.
    expect(ok.requests.filter((r) => r.url === "/acme").every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const wh = ok.requests.find((r) => r.url === "/globex");
    expect(String(wh?.headers["webhook-signature"]).split(" ")).toHaveLength(2);

    // Only the sidecar's deliveries (the CLI sends below add their own). The flaky receiver answers
    // 503 to the first attempt of each delivery: those come again through the retry topic, which
    // the ledger counts as duplicates (one per flaky delivery).
    const report = new DeliveryLedger({ ok, flaky }).report("secrets-e2e", [
      ...expectEach(acme, "ok/acme", "flaky/acme"),
      ...expectEach(globex, "ok/globex", "flaky/globex"),
    ]);

    // Every CLI command that reads the configuration, including the failing ones.
    const file = writeConfig("secrets", callbacks);
    const cli = async (label: string, args: string[]) => {
      const r: CliResult = await runCli(args, { env, timeoutMs: 60_000 });
      outputs[`${label} stdout`] = r.stdout;
      outputs[`${label} stderr`] = r.stderr;
      return r;
    };
    expect((await cli("check-config", ["check-config", "--config", file])).code).toBe(0);
    expect((await cli("send acme", ["send", "acme", "OrderPlaced", '{"id":"send-1"}', "--config", file])).code).toBe(1);
    expect((await cli("send globex", ["send", "globex", "InvoicePaid", '{"id":"send-2"}', "--config", file])).code).toBe(1);
    expect((await cli("replay --dry-run", ["replay", "--dry-run", "--config", file])).code).toBe(0);
    const replay = await cli("replay", ["replay", "--config", file]);
    expect(replay.code).toBe(1);
    expect(replay.stdout).toContain('"failed":');
    const broken = (name: string, mutate: (c: Record<string, unknown>[]) => void, extra: Record<string, unknown> = {}) => {
      const copy = structuredClone(configs);
      mutate(copy);
      return writeConfig(name, { ...callbacks, ...extra, configs: copy });
    };
    const notWhsec = broken("not-whsec", (c) => (c[1]!.secret = NOT_WHSEC));
    const onPyfly = broken("additional-on-pyfly", (c) => (c[0]!["additional-secrets"] = [ON_PYFLY]));
    const badType = broken("bad-type", () => undefined, { http: { timeout: "banana" } });
    for (const [label, path] of [
      ["not-whsec", notWhsec],
      ["additional-on-pyfly", onPyfly],
      ["bad-type", badType],
    ] as const) {
      const checked = await cli(`check-config ${label}`, ["check-config", "--config", path]);
      expect(checked.code, `${label}: ${checked.stderr}`).toBe(78);
      expect((await cli(`run ${label}`, ["run", "--config", path])).code).toBe(78);
      expect((await cli(`send ${label}`, ["send", "acme", "OrderPlaced", "{}", "--config", path])).code).toBe(78);
      expect((await cli(`replay ${label}`, ["replay", "--config", path])).code).toBe(78);
    }
    expect(outputs["check-config not-whsec stderr"]).toContain("configs[1].secret");
    expect(outputs["check-config additional-on-pyfly stderr"]).toContain("configs[0].additional-secrets");

    const leaks: string[] = [];
    for (const [where, text] of Object.entries(outputs)) {
      for (const [what, secret] of Object.entries(secrets)) if (text.includes(secret)) leaks.push(`${what} in ${where}`);
      if (!where.startsWith("GET /metrics")) for (const sig of signatures) if (text.includes(sig)) leaks.push(`a signature in ${where}`);
    }
    console.log(
      `secrets: ${Object.keys(secrets).length} secrets and ${signatures.length} signatures searched in ${Object.keys(outputs).length} outputs ` +
        `(${Math.round(Object.values(outputs).reduce((n, t) => n + t.length, 0) / 1024)} KB); leaks: ${leaks.length}`,
    );
    expect([...new Set(leaks)]).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.unexpected).toBe(0);
  }, 150_000);
});

/*
 * With pyfly's defaults (http.timeout 10 s, 5 attempts from 5 s, breaker after 5 consecutive
 * failures with 30 s recovery, 1 s in-process budget), a receiver that accepts connections and
 * never answers must not slow down a healthy receiver of the same events. Each comparison runs the
 * same traffic twice, the healthy receiver subscribed alone, then beside the black hole:
 * - a steady stream of records; the rate is distinct healthy deliveries per second from the start
 *   of the stream to the last delivery;
 * - a backlog produced before the sidecar starts and drained from the beginning; the rate is
 *   distinct healthy deliveries per second from the first healthy delivery to the last.
 * A run not finished within the measuring window (WINDOW_MS) is measured over the window.
 */
const WINDOW_MS = Number(process.env.FAULTS_BLACKHOLE_WINDOW_MS ?? 60_000);
/** pyfly's default http.timeout. */
const HTTP_TIMEOUT_MS = 10_000;

type BlackHoleTraffic = { kind: "stream"; records: number; batch: number; intervalMs: number } | { kind: "backlog"; records: number };

interface BlackHoleRun {
  rate: number;
  ms: number;
  rss: number[];
  report: FaultReport;
  perSecond: string;
  metrics: MetricMap;
  /** Every record delivered within the window. */
  complete: boolean;
  /** CPU time the sidecar used while measured (ms). */
  cpuMs: number;
}

interface BlackHoleComparison {
  alone: BlackHoleRun;
  beside: BlackHoleRun;
}

/**
 * The healthy receiver alone, then beside the black hole, with the same traffic; prints the rates
 * (prefixed `name`), the healthy deliveries per second, RSS and what the black hole saw.
 * `labels` name the two runs in their FAULT-REPORT lines (`blackhole-<label>`).
 */
async function compareBesideBlackHole(
  name: string,
  traffic: BlackHoleTraffic,
  labels: { alone: string; beside: string },
): Promise<BlackHoleComparison> {
  const n = traffic.records;
  const healthy = await startRecordingReceiver();
  const blackHole = await startReceiver({ kind: "hang" });
  let alone: BlackHoleRun;
  let beside: BlackHoleRun;
  let blackHoleInfo: string;
  try {
    const healthyConfig = {
      "tenant-id": "acme",
      name: "healthy",
      secret: PYFLY_SECRET,
      subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${healthy.url}/orders` }],
    };
    const blackHoleConfig = {
      "tenant-id": "acme",
      name: "partner",
      secret: PYFLY_SECRET,
      subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${blackHole.url}/hang` }],
    };
    // sidecarConfig shortens http.timeout and the in-process budget for the other tests: put
    // pyfly's defaults back. Nothing else about retries is set, so the defaults apply.
    const defaults = {
      "shutdown-grace": "5s",
      http: { timeout: `${HTTP_TIMEOUT_MS}ms` },
      retry: { "in-process-budget": "1s" },
      kafka: { "session-timeout": "10s" },
    };

    const run = async (label: string, configs: Record<string, unknown>[]): Promise<BlackHoleRun> => {
      const { topic, setup } = await scenario(`faults-bh-${label}`);
      const records = events(n, { prefix: label, tenant: "acme", eventType: "OrderPlaced" });
      const from = healthy.requests.length;
      // A backlog is in the topic before the sidecar starts (it reads from the beginning).
      if (traffic.kind === "backlog") await produce(producer, topic, records);
      const sidecar = SidecarProcess.start(`bh-${label}`, sidecarConfig({ ...setup, configs, callbacks: defaults }));
      let t0 = 0;
      let producing: Promise<unknown> = Promise.resolve();
      const rss: number[] = [];
      const sampler = setInterval(() => {
        try {
          rss.push(rssBytes(sidecar.pid as number));
        } catch {
          // exited
        }
      }, 250);
      // Once a second: the black hole's breaker, retry hand-offs and attempts, for the log.
      const timeline: string[] = [];
      const host = `127.0.0.1:${blackHole.port}`;
      const poller = setInterval(() => {
        void sidecar.metrics().then(
          (m) =>
            timeline.push(
              `${Math.round((Date.now() - sidecar.startedAt) / 1000)}s:${healthy.requests.length - from}/br${m.sum("callbacks_circuit_breaker_state", { target_host: host })}` +
                `/rs${m.sum("callbacks_retries_scheduled_total")}/to${m.sum("callbacks_delivery_attempts_total", { outcome: "timeout" })}/co${m.sum("callbacks_delivery_attempts_total", { outcome: "circuit_open" })}`,
            ),
          () => undefined,
        );
      }, 1000);
      const distinct = new Set<unknown>();
      let lastAt = 0;
      let seen = from;
      let cpuAtT0 = 0;
      let cpuAtEnd = 0;
      try {
        if (traffic.kind === "stream") {
          await sidecar.waitReady();
          t0 = Date.now();
          cpuAtT0 = sidecar.cpuMs() ?? 0;
          producing = produceStream(producer, topic, records, { batchSize: traffic.batch, intervalMs: traffic.intervalMs });
        }
        await waitFor(
          () => `${label}: ${n} healthy deliveries (have ${distinct.size})`,
          () => {
            for (; seen < healthy.requests.length; seen++) {
              const r = healthy.requests[seen]!;
              if (t0 === 0) {
                t0 = r.at;
                cpuAtT0 = sidecar.cpuMs() ?? 0;
              }
              if (!distinct.has(r.headers["x-pyfly-delivery-id"])) lastAt = r.at;
              distinct.add(r.headers["x-pyfly-delivery-id"]);
            }
            return distinct.size >= n || (t0 !== 0 && Date.now() - t0 >= WINDOW_MS);
          },
          WINDOW_MS + 60_000,
          50,
        );
        cpuAtEnd = sidecar.cpuMs() ?? 0;
        await producing;
      } catch (error) {
        // A failed hook is not followed by afterEach: don't leave the sidecar running.
        sidecar.kill("SIGKILL");
        throw error;
      } finally {
        clearInterval(sampler);
        clearInterval(poller);
      }
      if (configs.length > 1)
        console.log(`${name} ${label} timeline (t:healthy/breaker/retries scheduled/timeouts/circuit_open): ${timeline.join(" ")}`);
      const mine = healthy.requests.slice(from);
      const complete = distinct.size >= n;
      const ms = complete ? lastAt - t0 : WINDOW_MS;
      const metrics = await sidecar.metrics().finally(() => sidecar.kill("SIGTERM"));
      await sidecar.waitExit(20_000).catch(() => undefined);
      // lost = not delivered by the end of the measuring window (the run is stopped there).
      const report = new DeliveryLedger({ healthy: { requests: mine } }).report(
        `blackhole-${label}`,
        expectEach(records, "healthy/orders"),
      );
      return {
        rate: (distinct.size * 1000) / Math.max(1, ms),
        ms,
        rss,
        report,
        perSecond: perSecond(mine),
        metrics,
        complete,
        cpuMs: cpuAtEnd - cpuAtT0,
      };
    };

    alone = await run(labels.alone, [healthyConfig]);
    beside = await run(labels.beside, [healthyConfig, blackHoleConfig]);
    const host = `127.0.0.1:${blackHole.port}`;
    blackHoleInfo =
      `black hole: ${blackHole.connections} connections, ${blackHole.requests.length} requests; attempts timeout=${beside.metrics.sum("callbacks_delivery_attempts_total", { target_host: host, outcome: "timeout" })} ` +
      `circuit_open=${beside.metrics.sum("callbacks_delivery_attempts_total", { target_host: host, outcome: "circuit_open" })}; retries scheduled ${beside.metrics.sum("callbacks_retries_scheduled_total", { target_host: host })}; ` +
      `healthy host breaker openings ${beside.metrics.sum("callbacks_circuit_breaker_transitions_total", { target_host: `127.0.0.1:${healthy.port}`, state: "open" })}`;
  } finally {
    await healthy.close();
    await blackHole.close();
  }
  const third = (rss: number[], i: number) =>
    Math.max(...rss.slice(Math.floor((rss.length * i) / 3), Math.floor((rss.length * (i + 1)) / 3)));
  console.log(
    `${name}: ${n} records (${traffic.kind}); healthy alone ${alone.rate.toFixed(0)} rec/s (${alone.report.delivered} in ${alone.ms} ms), ` +
      `beside the black hole ${beside.rate.toFixed(0)} rec/s (${beside.report.delivered} in ${beside.ms} ms${beside.complete ? "" : ", window over"}), ` +
      `ratio ${(beside.rate / alone.rate).toFixed(2)}\n` +
      `${name}: RSS alone peak ${mb(Math.max(...alone.rss))}; beside peak ${mb(Math.max(...beside.rss))}, by thirds ${[0, 1, 2].map((i) => mb(third(beside.rss, i))).join(" / ")}, end ${mb(beside.rss.at(-1) ?? 0)}\n` +
      `${name}: sidecar CPU while measured: alone ${alone.cpuMs} ms (${((100 * alone.cpuMs) / Math.max(1, alone.ms)).toFixed(0)}% of a core, ${((1000 * alone.cpuMs) / Math.max(1, alone.report.delivered)).toFixed(0)} us per healthy delivery), ` +
      `beside ${beside.cpuMs} ms (${((100 * beside.cpuMs) / Math.max(1, beside.ms)).toFixed(0)}% of a core, ${((1000 * beside.cpuMs) / Math.max(1, beside.report.delivered)).toFixed(0)} us per healthy delivery)\n` +
      `${name}: healthy deliveries per second alone: ${alone.perSecond}\n` +
      `${name}: healthy deliveries per second beside: ${beside.perSecond}\n` +
      `${name}: ${blackHoleInfo}`,
  );
  return { alone, beside };
}

describe("black hole beside a healthy receiver, default retry settings", () => {
  // A steady stream, as services publish: ~300 records/s for ~30 s, long enough for the black
  // hole's breaker to open (5 timeouts of 10 s) and its retries to come back.
  const traffic: BlackHoleTraffic = {
    kind: "stream",
    records: Number(process.env.FAULTS_BLACKHOLE_RECORDS ?? 9_000),
    batch: 30,
    intervalMs: 100,
  };
  let alone: BlackHoleRun;
  let beside: BlackHoleRun;

  beforeAll(
    async () => {
      ({ alone, beside } = await compareBesideBlackHole("blackhole", traffic, { alone: "alone", beside: "beside" }));
    },
    WINDOW_MS * 2 + 120_000,
  );

  it("the sidecar's memory stays bounded beside the black hole (and the healthy receiver gets only its own deliveries)", () => {
    expect(alone.complete).toBe(true);
    expect(alone.report.lost).toBe(0);
    expect(beside.report.unexpected).toBe(0);
    expect(beside.report.idChanged).toBe(0);
    // Bounded: under a generous cap, and the last third of the run no higher than the middle third
    // by more than half (a leak grows with the records; in-flight work and heap do not).
    const third = (i: number) =>
      Math.max(...beside.rss.slice(Math.floor((beside.rss.length * i) / 3), Math.floor((beside.rss.length * (i + 1)) / 3)));
    expect(beside.rss.length).toBeGreaterThan(8);
    expect(Math.max(...beside.rss)).toBeLessThan(1024 * 2 ** 20);
    expect(third(2)).toBeLessThan(third(1) * 1.5);
  });

  // Under a steady stream the black hole must not slow the healthy receiver: no head-of-line
  // blocking, no retry churn crowding out fresh events. The backlog case is the next describe.
  it("the healthy receiver's rate beside the black hole is at least 80% of its rate alone", () => {
    expect(beside.rate / alone.rate).toBeGreaterThanOrEqual(0.8);
  });
});

describe("black hole beside a healthy receiver, default retry settings, a backlog drained from the beginning", () => {
  // A backlog is drained as fast as the CPU allows, and beside the black hole every record also
  // costs a retry-topic write once its wait for the stalled host ends (the 1 s budget). Whether
  // those writes fall inside the healthy drain depends only on how fast the machine drains 2,000
  // records, so the rate ratio is printed (0.39 to 0.87 measured on 2 cores), not asserted. What
  // the black hole must never cost is waiting: a pipeline that queued healthy deliveries behind
  // it would hold them until its attempts time out (http.timeout 10 s).
  const traffic: BlackHoleTraffic = { kind: "backlog", records: Number(process.env.FAULTS_BLACKHOLE_BACKLOG_RECORDS ?? 2_000) };
  let alone: BlackHoleRun;
  let beside: BlackHoleRun;

  beforeAll(
    async () => {
      ({ alone, beside } = await compareBesideBlackHole("blackhole-backlog", traffic, {
        alone: "backlog-alone",
        beside: "backlog-beside",
      }));
    },
    WINDOW_MS * 2 + 120_000,
  );

  it("every backlog record reaches the healthy receiver alone and beside the black hole, only its own deliveries", () => {
    expect(alone.complete).toBe(true);
    expect(alone.report.lost).toBe(0);
    expect(beside.complete).toBe(true);
    expect(beside.report.lost).toBe(0);
    expect(beside.report.unexpected).toBe(0);
    expect(beside.report.idChanged).toBe(0);
  });

  it("the healthy backlog drains beside the black hole without waiting on it: done before its first attempt could time out", () => {
    expect(beside.complete).toBe(true);
    expect(beside.ms).toBeLessThan(HTTP_TIMEOUT_MS / 2);
  });
});
