#!/usr/bin/env node
// `npm run demo`: the sidecar's main job end to end on this machine. Starts a local Kafka broker
// (unless KAFKA_BROKERS points at one), the sample receiver, and the sidecar with the repository's
// application.yml; publishes sample events; shows what was delivered; stops everything.
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { freePort, startBroker } from "./kafka.mjs";

const log = (...args) => console.log("[demo]", ...args);
const SIDECAR_LOG = path.resolve(".cache/demo/sidecar.log");
const children = [];
let broker;

async function main() {
  let brokers = process.env.KAFKA_BROKERS;
  if (!brokers) {
    broker = await startBroker({ port: await freePort(), killOnExit: true });
    brokers = broker.bootstrap;
  }
  log(`Kafka at ${brokers}`);
  const kafka = new Kafka({ clientId: "demo", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: ["orders", "invoices"].map((topic) => ({ topic, numPartitions: 3 })), waitForLeaders: true });
  await admin.disconnect();

  const receiverPort = await freePort();
  const adminPort = await freePort();
  const deliveries = [];
  const receiver = start("receiver", ["scripts/sample-receiver.mjs"], {
    PORT: String(receiverPort),
    PYFLY_SECRET: "demo-secret-acme",
    WEBHOOK_SECRET: "whsec_ZGVtby1zZWNyZXQtZ2xvYmV4LTMyLWJ5dGVzLWxvbmch",
  });
  createInterface({ input: receiver.stdout }).on("line", (line) => {
    const d = JSON.parse(line);
    deliveries.push(d);
    log(
      `receiver got ${d.event_type} for ${d.tenant} at ${d.path}: signature ${d.signature_valid ? "valid" : "INVALID"} (${d.scheme}), body ${d.body}`,
    );
  });

  const sidecar = start("sidecar", ["dist/cli/index.js", "run", "--config", "application.yml"], {
    KAFKA_BROKERS: brokers,
    DEMO_RECEIVER_PORT: String(receiverPort),
    ADMIN_PORT: String(adminPort),
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
  });
  // The sidecar's JSON log goes to a file; the demo prints what a person reads.
  mkdirSync(path.dirname(SIDECAR_LOG), { recursive: true });
  sidecar.stdout.pipe(createWriteStream(SIDECAR_LOG));
  log(`sidecar log (JSON lines): ${path.relative(process.cwd(), SIDECAR_LOG)}`);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok, 60_000, "the sidecar to be ready");
  log(`sidecar ready; admin on http://127.0.0.1:${adminPort}`);

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const headers = (tenant, type) => ({ "x-tenant-id": tenant, "x-event-type": type });
  await producer.send({
    topic: "orders",
    messages: [
      { key: "order-1", value: JSON.stringify({ orderId: 1, amount: 99.5, customer: "Zoë" }), headers: headers("acme", "OrderPlaced") },
      {
        key: "order-2",
        value: JSON.stringify({ orderId: 2, amount: 10, items: [{ sku: "A-1", qty: 3 }] }),
        headers: headers("acme", "OrderPlaced"),
      },
      { key: "order-1", value: JSON.stringify({ orderId: 1, reason: "customer request" }), headers: headers("acme", "OrderCancelled") },
      { key: "bad", value: "this is not JSON", headers: headers("acme", "OrderPlaced") },
    ],
  });
  await producer.send({
    topic: "invoices",
    messages: [
      // Written as text: the integer is beyond a JS number, and the sidecar keeps it exact.
      { key: "inv-7", value: '{"invoiceId": 7, "paid": true, "total": 12345678901234567890}', headers: headers("globex", "InvoicePaid") },
    ],
  });
  await producer.disconnect();
  log("published 5 records (one of them not JSON)");

  // acme: 2 OrderPlaced x 2 subscriptions + 1 OrderCancelled x "*" = 5; globex: 1.
  await waitFor(() => deliveries.length >= 6, 60_000, "6 deliveries");
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  log("metrics:");
  for (const line of metrics.split("\n")) {
    if (/^callbacks_(deliveries_total|events_consumed_total|events_skipped_total|dead_letters_total)/.test(line)) log(`  ${line}`);
  }
  const invalid = deliveries.filter((d) => !d.signature_valid).length;
  for (const line of readFileSync(SIDECAR_LOG, "utf8").split("\n")) {
    const entry = line.startsWith("{") ? JSON.parse(line) : undefined;
    if (entry?.msg === "record dead-lettered")
      log(`record ${entry.topic}/${entry.partition}/${entry.offset} dead-lettered as ${entry.reason} (${entry.detail})`);
  }
  log(`${deliveries.length} deliveries, ${invalid} with an invalid signature`);
  sidecar.kill("SIGTERM");
  const code = await new Promise((resolve) => sidecar.on("exit", resolve));
  log(`sidecar stopped (exit ${code})`);
  return invalid === 0 && code === 0 ? 0 : 1;
}

function start(name, args, env) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal === null) log(`${name} exited with ${code}`);
  });
  return child;
}

async function waitFor(check, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error("[demo] failed:", error.message);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  if (broker) await broker.stop();
}
process.exit(exitCode);
