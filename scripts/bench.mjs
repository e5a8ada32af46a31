#!/usr/bin/env node
// `npm run bench`: the performance figures quoted in notes and README come from here, never from
// tests. Three measurements, each printed as one JSON line:
//   canonical-json  canonicalisation of 1 KB / 100 KB / 1 MB payloads (CPython-identical bytes)
//   dispatch        signed deliveries per second through the real sender to a local receiver
//   pipeline        Kafka records -> webhooks end to end through `startSidecar` on a local broker
// BENCH_RECORDS (default 5000) sizes the pipeline run. Targets only 127.0.0.1.
import { createServer } from "node:http";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { freePort, startBroker } from "./kafka.mjs";
import { canonicalizeJson } from "../dist/delivery/canonical-json.js";
import { createDeliveryEngine } from "../dist/delivery/engine.js";
import { parseSettings } from "../dist/config/load.js";
import { createLogger } from "../dist/observability/logger.js";
import { startSidecar } from "../dist/main.js";

const logger = createLogger("silent");
const report = (name, figures) => console.log(JSON.stringify({ bench: name, ...figures }));

function payloadOf(bytes) {
  // About 110 bytes an item; stop at the requested size.
  const items = [];
  for (let i = 0; i * 110 < bytes; i++) {
    items.push({ id: i, sku: `SKU-${i}`, name: `Produit n°${i} – ünïcödé`, price: i * 1.25, qty: i % 7, tags: ["a", "b"] });
  }
  return JSON.stringify({ order: { id: 1, items } });
}

function benchCanonical() {
  for (const [label, size] of [["1KB", 1024], ["100KB", 100 * 1024], ["1MB", 1024 * 1024]]) {
    const text = payloadOf(size);
    const iterations = Math.max(5, Math.round((20 * 1024 * 1024) / text.length));
    for (let i = 0; i < 3; i++) canonicalizeJson(text);
    const started = performance.now();
    for (let i = 0; i < iterations; i++) canonicalizeJson(text);
    const ms = (performance.now() - started) / iterations;
    report("canonical-json", { payload: label, bytes: text.length, ms_per_op: +ms.toFixed(3), mb_per_s: +((text.length / 1048576) / (ms / 1000)).toFixed(1) });
  }
}

async function startReceiver() {
  let count = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      count += 1;
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, count: () => count, close: () => new Promise((r) => server.close(r)) };
}

const yamlConfig = (targetUrl, extra = "") => `pyfly:
  callbacks:
    http: { allow-private-networks: true, timeout: 5s }
${extra}
    configs:
      - tenant-id: acme
        name: bench
        secret: bench-secret
        subscriptions:
          - { event-type: "*", target-url: "${targetUrl}" }
`;

async function benchDispatch() {
  const receiver = await startReceiver();
  const engine = createDeliveryEngine(parseSettings(yamlConfig(receiver.url), {}), logger);
  const payload = payloadOf(1024);
  const total = 5000;
  const concurrency = 64;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await engine.dispatcher.dispatchJson("acme", "OrderPlaced", payload);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  report("dispatch", { deliveries: total, concurrency, payload_bytes: payload.length, per_second: Math.round(total / seconds) });
  await engine.close();
  await receiver.close();
}

async function benchPipeline() {
  const records = Number(process.env.BENCH_RECORDS ?? 5000);
  const broker = process.env.KAFKA_BROKERS ? null : await startBroker({ port: await freePort(), killOnExit: true });
  const brokers = process.env.KAFKA_BROKERS ?? broker.bootstrap;
  const kafka = new Kafka({ clientId: "bench", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
  const topic = `bench-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const payload = payloadOf(1024);
  const headers = { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" };
  for (let i = 0; i < records; i += 500) {
    const batch = Array.from({ length: Math.min(500, records - i) }, (_, j) => ({ key: `k${i + j}`, value: payload, headers }));
    await producer.send({ topic, messages: batch });
  }
  await producer.disconnect();

  const receiver = await startReceiver();
  const settings = parseSettings(
    yamlConfig(receiver.url, `    kafka: { brokers: "${brokers}", topics: [${topic}], group-id: ${topic}, from-beginning: true }\n    server: { port: 0, host: 127.0.0.1 }\n    enabled: true`),
    {},
  );
  const started = performance.now();
  const sidecar = await startSidecar(settings, logger);
  while (receiver.count() < records) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - started) / 1000;
  const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
  const latency = histogramPercentiles(metrics, "callbacks_delivery_duration_seconds");
  report("pipeline", { records, partitions: 6, seconds: +seconds.toFixed(2), records_per_second: Math.round(records / seconds), attempt_latency_p50_ms_le: latency.p50, attempt_latency_p99_ms_le: latency.p99, note: "includes group join and fetch from the beginning" });
  await sidecar.stop();
  await receiver.close();
  if (broker) await broker.stop();
}

/** Upper bucket bounds (ms) holding the 50th and 99th percentile, read from the exported histogram. */
function histogramPercentiles(text, name) {
  const buckets = [];
  for (const line of text.split("\n")) {
    const m = line.match(new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\d+)`));
    if (m) buckets.push([m[1] === "+Inf" ? Infinity : Number(m[1]) * 1000, Number(m[2])]);
  }
  const byLe = new Map();
  for (const [le, n] of buckets) byLe.set(le, (byLe.get(le) ?? 0) + n);
  const sorted = [...byLe].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const find = (p) => sorted.find(([, n]) => n >= p * total)?.[0];
  return { p50: find(0.5), p99: find(0.99) };
}

benchCanonical();
await benchDispatch();
await benchPipeline();
process.exit(0);
