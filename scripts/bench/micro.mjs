// `npm run bench -- --micro`: the in-process micro benchmarks (the original scripts/bench.mjs), each
// printed as one JSON line:
//   canonical-json  canonicalisation of 1 KB / 100 KB / 1 MB payloads (CPython-identical bytes), and
//                   of a 1 KB payload already in canonical form (as pyfly sends it), as a string and
//                   as Kafka's bytes, with the fast path that returns such input as it is and without
//   payload-filter  what subscription filters cost per event: the lossless parse (once per event,
//                   only if a filter reads the payload) and each filter's evaluation
//   dispatch        signed deliveries per second through the real sender to a local receiver
// They import the built modules in dist/ directly, so they follow the source's internal API.
import { createServer } from "node:http";

const { canonicalizeJson } = await import("../../dist/delivery/canonical-json.js");
const { createDeliveryEngine } = await import("../../dist/app/delivery-engine.js");
const { compileFilter } = await import("../../dist/domain/payload-filter.js");
const { parseLossless } = await import("../../dist/shared/lossless-json.js");
const { parseSettings } = await import("../../dist/config/load.js");
const { createLogger } = await import("../../dist/observability/logger.js");

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
  for (const [label, size] of [
    ["1KB", 1024],
    ["100KB", 100 * 1024],
    ["1MB", 1024 * 1024],
  ]) {
    const text = payloadOf(size);
    const iterations = Math.max(5, Math.round((20 * 1024 * 1024) / text.length));
    for (let i = 0; i < 3; i++) canonicalizeJson(text);
    const started = performance.now();
    for (let i = 0; i < iterations; i++) canonicalizeJson(text);
    const ms = (performance.now() - started) / iterations;
    report("canonical-json", {
      payload: label,
      bytes: text.length,
      ms_per_op: +ms.toFixed(3),
      mb_per_s: +(text.length / 1048576 / (ms / 1000)).toFixed(1),
    });
  }
  const canonical = canonicalizeJson(payloadOf(1024), { fastPath: false });
  for (const [input, form] of [
    [canonical, "string"],
    [Buffer.from(canonical), "bytes"],
  ]) {
    for (const fastPath of [true, false]) {
      const us = microsPer(() => canonicalizeJson(input, { strict: true, fastPath }));
      report("canonical-json", {
        payload: `1KB canonical ${form}`,
        fast_path: fastPath,
        bytes: canonical.length,
        us_per_op: +us.toFixed(2),
        mb_per_s: +(canonical.length / 1048576 / (us / 1e6)).toFixed(1),
      });
    }
  }
}

/** Microseconds per call of `fn`, after a warm-up, over about half a second. */
function microsPer(fn) {
  for (let i = 0; i < 2_000; i++) fn();
  let iterations = 0;
  const started = performance.now();
  while (performance.now() - started < 500) {
    for (let i = 0; i < 1_000; i++) fn();
    iterations += 1_000;
  }
  return ((performance.now() - started) * 1000) / iterations;
}

function benchFilters() {
  const body = canonicalizeJson(payloadOf(1024).replace('{"order":', '{"amount":150,"currency":"EUR","region":"eu","order":'));
  const headers = new Map([["x-region", "eu"]]);
  const filters = [
    { "headers.x-region": { $in: ["eu", "uk"] } },
    { "payload.amount": { $gte: 100 } },
    {
      "payload.amount": { $gte: 100 },
      "payload.currency": { $in: ["EUR", "GBP"] },
      $or: [{ "payload.order.id": 1 }, { "payload.vip": true }],
    },
  ].map(compileFilter);
  const inputFor = () => {
    let payload;
    return { payload: () => (payload ??= parseLossless(body)), header: (name) => headers.get(name) };
  };
  report("payload-filter", {
    case: "lossless parse of the payload (once per event)",
    bytes: body.length,
    us_per_event: +microsPer(() => parseLossless(body)).toFixed(2),
  });
  const once = inputFor();
  once.payload();
  const names = ["header $in", "payload $gte", "3 conditions with $or"];
  filters.forEach((filter, i) =>
    report("payload-filter", {
      case: `evaluate: ${names[i]} (payload parsed)`,
      us_per_event: +microsPer(() => filter.matches(once)).toFixed(3),
    }),
  );
  report("payload-filter", {
    case: "10 subscriptions with payload filters, parse included",
    bytes: body.length,
    us_per_event: +microsPer(() => {
      const input = inputFor();
      for (let i = 0; i < 10; i++) filters[1 + (i % 2)].matches(input);
    }).toFixed(2),
  });
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

const yamlConfig = (targetUrl) => `pyfly:
  callbacks:
    http: { allow-private-networks: true, timeout: 5s }
    configs:
      - tenant-id: acme
        name: bench
        secret: bench-secret
        subscriptions:
          - { event-type: "*", target-url: "${targetUrl}" }
`;

async function benchDispatch(total) {
  const receiver = await startReceiver();
  const engine = createDeliveryEngine(parseSettings(yamlConfig(receiver.url), {}), logger);
  const payload = payloadOf(1024);
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

export async function runMicro({ dispatchDeliveries = 5000 } = {}) {
  benchCanonical();
  benchFilters();
  await benchDispatch(dispatchDeliveries);
}
