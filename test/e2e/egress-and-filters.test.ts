/**
 * The BUILT sidecar on the real broker: subscriptions' payload filters select exactly the events
 * they name; deliveries go through a real CONNECT proxy that the SSRF guard still governs; and an
 * HTTPS receiver requiring client certificates (a test CA made here) gets ours, refuses others
 * with a final, named outcome, and sees a replaced certificate without a restart.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Admin, Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConnectProxy } from "../support/connect-proxy.js";
import { e2eSuite } from "../support/e2e-suite.js";
import { startMtlsReceiver } from "../support/mtls-receiver.js";
import { callbackConfig, SidecarProcess, sidecarConfig } from "../support/sidecar-process.js";
import { createTestCa, type TestCa } from "../support/test-ca.js";
import { readTopic, scenario, sleep, startRecordingReceiver, waitFor } from "../support/traffic.js";

const e2e = e2eSuite("e2e-egress");
const { brokers, track } = e2e;
const SECRET = "e2e-egress-pyfly-secret-51c9";

let admin: Admin;
let producer: Producer;
beforeAll(() => void ({ admin, producer } = e2e));

/** Events as producers write them: raw JSON text (exact big integers, 1e3), and an optional region header. */
const EVENTS: { id: string; json: string; region?: string }[] = [
  {
    id: "e1",
    json: '{"id":"e1","amount":150,"currency":"EUR","customer":{"tier":"gold"},"items":[{"sku":"A-1"}],"big":12345678901234567890}',
    region: "eu",
  },
  { id: "e2", json: '{"id":"e2","amount":99,"currency":"USD","customer":{"tier":"silver"},"big":12345678901234567891}', region: "us" },
  { id: "e3", json: '{"id":"e3","amount":100,"currency":"EUR","tags":["vip","new"]}', region: "apac" },
  { id: "e4", json: '{"id":"e4","amount":1e3,"status":"paid","customer":{"tier":"gold"}}' },
  { id: "e5", json: '{"id":"e5","amount":-5,"status":"refunded","note":null}', region: "eu" },
  { id: "e6", json: '{"id":"e6","status":"paid","tags":["new"],"big":99999999999999999999}', region: "us" },
  { id: "e7", json: '{"id":"e7","amount":250.5,"currency":"GBP"}', region: "uk" },
  { id: "e8", json: '{"id":"e8"}' },
];
const ALL = EVENTS.map((e) => e.id);
const except = (...ids: string[]) => ALL.filter((id) => !ids.includes(id));

/** Filter -> the events it must select, exactly. */
const FILTERS: [Record<string, unknown>, string[]][] = [
  [{ "payload.amount": { $gte: 100 } }, ["e1", "e3", "e4", "e7"]],
  [{ "payload.amount": { $lt: 100 } }, ["e2", "e5"]],
  [{ "payload.amount": { $gt: 100, $lt: 200 } }, ["e1"]],
  [{ "payload.amount": 1000 }, ["e4"]],
  [{ "payload.currency": "EUR" }, ["e1", "e3"]],
  [{ "payload.currency": { $ne: "EUR" } }, except("e1", "e3")],
  [{ "payload.currency": { $in: ["USD", "GBP"] } }, ["e2", "e7"]],
  [{ "payload.currency": { $nin: ["EUR", "USD"] } }, except("e1", "e2", "e3")],
  [{ "payload.big": 12345678901234567890n }, ["e1"]],
  [{ "payload.big": { $gt: 12345678901234567890n } }, ["e2", "e6"]],
  [{ "payload.status": { $exists: false } }, ["e1", "e2", "e3", "e7", "e8"]],
  [{ "payload.note": { $exists: true } }, ["e5"]],
  [{ "payload.customer.tier": "gold" }, ["e1", "e4"]],
  [{ "payload.items.0.sku": "A-1" }, ["e1"]],
  [{ "payload.tags": "vip" }, ["e3"]],
  [{ "payload.tags": { $nin: ["vip"] } }, except("e3")],
  [{ "headers.x-region": { $in: ["eu", "uk"] } }, ["e1", "e5", "e7"]],
  [{ "headers.x-region": { $exists: false } }, ["e4", "e8"]],
  [{ "payload.missing": { $not: { $eq: 1 } } }, ALL],
  [{ $not: { "payload.currency": "EUR" } }, except("e1", "e3")],
  [{ $or: [{ "payload.status": "paid" }, { "payload.amount": { $gt: 200 } }] }, ["e4", "e6", "e7"]],
  [{ $and: [{ "headers.x-region": "eu" }, { $or: [{ "payload.amount": { $gt: 100 } }, { "payload.status": "refunded" }] }] }, ["e1", "e5"]],
  [{ "payload.id": { $in: ["e1", "e8"] }, "headers.x-region": { $ne: "eu" } }, ["e8"]],
  [{ "payload.amount": { $gte: 1e6 } }, []],
];

const produceEvents = (topic: string, tenant: string, events: typeof EVENTS) =>
  producer.send({
    topic,
    acks: -1,
    messages: events.map((e) => ({
      key: e.id,
      value: e.json,
      headers: { "x-tenant-id": tenant, "x-event-type": "OrderPlaced", ...(e.region ? { "x-region": e.region } : {}) },
    })),
  });

describe("payload filters", () => {
  it(`${FILTERS.length} filters over ${EVENTS.length} events select exactly the expected events; filtered deliveries cost no attempt and no dead letter`, async () => {
    const { topic, setup } = await scenario(admin, brokers, "filters", { partitions: 1 });
    const receiver = track(await startRecordingReceiver());
    const subscriptions = FILTERS.map(([filter], i) => ({ "event-type": "OrderPlaced", "target-url": `${receiver.url}/f${i}`, filter }));
    const sidecar = SidecarProcess.start(
      "filters",
      sidecarConfig({ ...setup, configs: [{ "tenant-id": "acme", name: "filtered", secret: SECRET, subscriptions }] }),
    );
    await sidecar.waitReady();
    await produceEvents(topic.name, "acme", EVENTS);

    const expected = FILTERS.reduce((n, [, ids]) => n + ids.length, 0);
    await waitFor(
      () => `${expected} requests (have ${receiver.requests.length})\n${sidecar.tail(10)}`,
      () => receiver.requests.length >= expected,
      30_000,
    );
    await sleep(1_000);
    const got = new Map<string, string[]>();
    for (const r of receiver.requests) got.set(r.url, [...(got.get(r.url) ?? []), (JSON.parse(r.body.toString()) as { id: string }).id]);
    FILTERS.forEach(([filter, ids], i) => {
      expect(
        (got.get(`/f${i}`) ?? []).sort(),
        JSON.stringify(filter, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)),
      ).toEqual(ids);
    });
    // A 20-digit integer arrives as sent.
    expect(receiver.requests.find((r) => r.url === "/f8")?.body.toString()).toContain('"big":12345678901234567890');
    const m = await sidecar.metrics();
    expect(m.sum("callbacks_delivery_attempts_total")).toBe(expected);
    expect(m.sum("callbacks_deliveries_filtered_total", { tenant: "acme" })).toBe(FILTERS.length * EVENTS.length - expected);
    expect(m.sum("callbacks_dead_letters_total")).toBe(0);
  }, 90_000);

  it("an event no subscription's filter wants completes its record, counted as skipped (filtered)", async () => {
    const { topic, setup } = await scenario(admin, brokers, "filters-none", { partitions: 1 });
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "filters-none",
      sidecarConfig({
        ...setup,
        configs: [
          {
            "tenant-id": "acme",
            name: "n",
            secret: SECRET,
            subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${receiver.url}/eu`, filter: { "headers.x-region": "eu" } }],
          },
        ],
      }),
    );
    await sidecar.waitReady();
    await produceEvents(topic.name, "acme", [EVENTS[1]!, EVENTS[0]!]);
    await waitFor("the eu event", () => receiver.requests.length >= 1, 30_000);
    await waitFor(
      "the filtered record counted",
      async () => (await sidecar.metrics()).sum("callbacks_events_skipped_total", { reason: "filtered" }) === 1,
      10_000,
    );
    await waitFor("both offsets committed", async () => (await committed(setup.groupId, topic.name)) === 2, 20_000);
    expect(receiver.requests.map((r) => (JSON.parse(r.body.toString()) as { id: string }).id)).toEqual(["e1"]);
  }, 60_000);

  it("an invalid filter stops the start with exit 78, naming its key path", async () => {
    const { setup } = await scenario(admin, brokers, "filters-invalid", { partitions: 1 });
    const sidecar = SidecarProcess.start(
      "filters-invalid",
      sidecarConfig({
        ...setup,
        configs: [
          callbackConfig("acme", "n", SECRET, []),
          {
            "tenant-id": "beta",
            name: "n",
            secret: SECRET,
            subscriptions: [
              { "event-type": "*", "target-url": "https://hooks.example.com/a", filter: { "payload.amount": { $regex: "^1" } } },
              { "event-type": "*", "target-url": "https://hooks.example.com/b", filter: { "payload.currency": { $in: "EUR" } } },
            ],
          },
        ],
      }),
    );
    const exit = await sidecar.waitExit(20_000);
    expect(exit.code).toBe(78);
    expect(sidecar.stderr + sidecar.stdout).toContain("pyfly.callbacks.configs[1].subscriptions[0].filter.payload.amount.$regex");
    expect(sidecar.stderr + sidecar.stdout).toContain("pyfly.callbacks.configs[1].subscriptions[1].filter.payload.currency.$in");
  }, 30_000);
});

async function committed(groupId: string, topic: string): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  return offsets.flatMap((t) => t.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
}

describe("egress through a CONNECT proxy, under the SSRF guard", () => {
  it("deliveries go through the proxy to the checked address; loopback and metadata targets are refused before it is asked; NO_PROXY bypasses it; a refusing proxy costs the breaker nothing", async () => {
    const receiver = track(await startRecordingReceiver());
    const proxy = await startConnectProxy();
    try {
      // 127.0.0.1 is allowed by CIDR; every other private or special address is refused.
      const guard = {
        http: { "allow-private-networks": false, "allowed-cidrs": ["127.0.0.1/32"], "circuit-breaker": { "failure-threshold": 2 } },
      };
      const subscriptions = [
        { eventType: "OrderPlaced", url: `${receiver.url}/via-proxy` },
        { eventType: "OrderPlaced", url: `http://127.0.0.2:${receiver.port}/loopback` },
        { eventType: "OrderPlaced", url: "http://169.254.169.254/latest/meta-data/" },
      ];
      const run = async (name: string, env: NodeJS.ProcessEnv, count: number) => {
        const { topic, setup } = await scenario(admin, brokers, name, { partitions: 1 });
        const sidecar = SidecarProcess.start(
          name,
          sidecarConfig({
            ...setup,
            callbacks: guard,
            configs: [callbackConfig("acme", "n", SECRET, subscriptions, { "max-attempts": 10, "backoff-ms": 200 })],
          }),
          env,
        );
        await sidecar.waitReady();
        await produceEvents(topic.name, "acme", EVENTS.slice(0, count));
        return { sidecar, setup };
      };

      // Through the proxy.
      const before = receiver.requests.length;
      const { sidecar, setup } = await run("proxy", { HTTP_PROXY: proxy.url }, 3);
      await waitFor(
        () => `3 deliveries via the proxy\n${sidecar.tail(10)}`,
        () => receiver.requests.length >= before + 3,
        30_000,
      );
      const letters = await readTopic(e2e.kafka, setup.deadLetterTopic, 6, 30_000);
      expect(letters.map((l) => l.headers["callback-reason"])).toEqual(Array(6).fill("ssrf_blocked"));
      expect(proxy.connects.length).toBeGreaterThan(0);
      expect(new Set(proxy.connects)).toEqual(new Set([`127.0.0.1:${receiver.port}`]));
      expect(receiver.requests.slice(before).every((r) => r.url === "/via-proxy")).toBe(true);

      // NO_PROXY: straight to the receiver.
      const connects = proxy.connects.length;
      const direct = await run("proxy-bypass", { HTTP_PROXY: proxy.url, NO_PROXY: "localhost,127.0.0.1" }, 2);
      await waitFor(
        () => `2 direct deliveries\n${direct.sidecar.tail(10)}`,
        () => receiver.requests.length >= before + 5,
        30_000,
      );
      expect(proxy.connects.length).toBe(connects);

      // The proxy refuses (502 of its own) for a while, then recovers: retried, never charged to the target.
      proxy.refuseWith = 502;
      const refused = await run("proxy-refusing", { HTTP_PROXY: proxy.url }, 2);
      await waitFor(
        "proxy errors counted",
        async () => (await refused.sidecar.metrics()).sum("callbacks_proxy_errors_total", { reason: "refused" }) >= 4,
        30_000,
      );
      proxy.refuseWith = undefined;
      await waitFor(
        () => `2 deliveries once the proxy recovers\n${refused.sidecar.tail(10)}`,
        () => receiver.requests.length >= before + 7,
        30_000,
      );
      const m = await refused.sidecar.metrics();
      expect(m.sum("callbacks_circuit_breaker_transitions_total", { target_host: `127.0.0.1:${receiver.port}`, state: "open" })).toBe(0);
      expect(
        m.sum("callbacks_delivery_attempts_total", { target_host: `127.0.0.1:${receiver.port}`, outcome: "proxy_error" }),
      ).toBeGreaterThanOrEqual(4);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

describe("client certificates to an HTTPS receiver", () => {
  let caA: TestCa;
  let caB: TestCa;
  let dir: string;
  beforeAll(() => {
    caA = createTestCa("e2e-a");
    caB = createTestCa("e2e-b", caA.dir);
    dir = mkdtempSync(join(tmpdir(), "e2e-tls-"));
  });
  afterAll(() => {
    caA.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the configured certificate is delivered with; none, or one from another CA, is a final client_certificate_rejected dead letter after one attempt; replaced files take effect without a restart", async () => {
    const server = caA.server("receiver", ["IP:127.0.0.1"]);
    const good = caA.client("sidecar-a");
    const foreign = caB.client("sidecar-b");
    const receiver = await startMtlsReceiver(server.certFile, server.keyFile, caA.caFile);
    try {
      // The files a Secret mount would hold, replaced in place later.
      const certFile = join(dir, "tls.crt");
      const keyFile = join(dir, "tls.key");
      copyFileSync(good.certFile, certFile);
      copyFileSync(good.keyFile, keyFile);
      const url = (path: string) => [{ eventType: "OrderPlaced", url: `https://127.0.0.1:${receiver.port}/${path}` }];
      const { topic, setup } = await scenario(admin, brokers, "mtls", { partitions: 1 });
      const sidecar = SidecarProcess.start(
        "mtls",
        sidecarConfig({
          ...setup,
          callbacks: { http: { tls: { "ca-file": caA.caFile } } },
          configs: [
            callbackConfig("good", "n", SECRET, url("good"), { tls: { "client-cert-file": certFile, "client-key-file": keyFile } }),
            callbackConfig("none", "n", SECRET, url("none")),
            callbackConfig("foreign", "n", SECRET, url("foreign"), {
              tls: { "client-cert-file": foreign.certFile, "client-key-file": foreign.keyFile },
            }),
          ],
        }),
      );
      await sidecar.waitReady();
      for (const tenant of ["good", "none", "foreign"]) await produceEvents(topic.name, tenant, [EVENTS[0]!]);
      await waitFor(
        () => `the good delivery\n${sidecar.tail(10)}`,
        () => receiver.requests.length >= 1,
        30_000,
      );
      expect(receiver.requests).toEqual([{ path: "/good", cn: "sidecar-a" }]);
      const letters = await readTopic(e2e.kafka, setup.deadLetterTopic, 2, 30_000);
      expect(
        letters.map((l) => [l.headers["callback-tenant-id"], l.headers["callback-reason"], l.headers["callback-attempts"]]).sort(),
      ).toEqual([
        ["foreign", "client_certificate_rejected", "1"],
        ["none", "client_certificate_rejected", "1"],
      ]);

      // A Secret update: the certificate and key are replaced by ones the receiver does not trust.
      copyFileSync(foreign.certFile, certFile);
      copyFileSync(foreign.keyFile, keyFile);
      await sleep(1_100);
      await produceEvents(topic.name, "good", [EVENTS[1]!]);
      const after = await readTopic(e2e.kafka, setup.deadLetterTopic, 3, 30_000);
      expect(after.map((l) => `${l.headers["callback-tenant-id"]} ${l.headers["callback-reason"]}`)).toContain(
        "good client_certificate_rejected",
      );
      const m = await sidecar.metrics();
      expect(m.sum("callbacks_tls_reloads_total", { outcome: "reloaded" })).toBe(1);
      expect(m.sum("callbacks_circuit_breaker_transitions_total", { state: "open" })).toBe(0);
      expect(receiver.requests).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  }, 90_000);
});
