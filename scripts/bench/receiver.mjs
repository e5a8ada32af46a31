// Benchmark receiver (a child process of scripts/bench.mjs): an HTTP server on 127.0.0.1 answering
// 204 after `delayMs`. It counts distinct deliveries (X-Pyfly-Delivery-Id; a request without it
// counts as distinct) and tells the parent, over IPC, when the first arrives and when `expected`
// distinct deliveries have arrived. With `latency` it reads `sent_at_us` from each body and keeps
// receipt time minus produce time for every distinct delivery.
import { createServer } from "node:http";
import { DELIVERY_ID_HEADER, childConfig, nowMs, percentile, round } from "./common.mjs";

const { delayMs = 0, expected, latency = false } = childConfig();
const seen = new Set();
let requests = 0;
let firstAt;
let lastAt;
let doneSent = false;
const sentAt = [];
const receivedAt = [];
const SENT_AT = /"sent_at_us":(\d+)/;

function received(id, body) {
  const at = nowMs();
  requests += 1;
  if (firstAt === undefined) {
    firstAt = at;
    process.send?.({ type: "first", at });
  }
  const key = id ?? `#${requests}`;
  if (seen.has(key)) return;
  seen.add(key);
  lastAt = at;
  if (body !== undefined) {
    const m = SENT_AT.exec(body);
    if (m) {
      sentAt.push(Number(m[1]) / 1000);
      receivedAt.push(at);
    }
  }
  if (!doneSent && seen.size >= expected) {
    doneSent = true;
    process.send?.({ type: "done", at });
  }
}

const server = createServer((req, res) => {
  const id = req.headers[DELIVERY_ID_HEADER];
  const reply = () => {
    res.writeHead(204);
    res.end();
  };
  const finish = (body) => {
    received(id, body);
    if (delayMs > 0) setTimeout(reply, delayMs);
    else reply();
  };
  if (latency) {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => finish(body));
  } else {
    req.resume();
    req.on("end", () => finish(undefined));
  }
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

/** Latency figures in ms; `skipMs` leaves out records scheduled before t0 + skipMs. */
function latencies(t0, skipMs) {
  const all = [];
  const later = [];
  for (let i = 0; i < sentAt.length; i++) {
    const l = receivedAt[i] - sentAt[i];
    all.push(l);
    if (t0 !== undefined && sentAt[i] >= t0 + skipMs) later.push(l);
  }
  all.sort((a, b) => a - b);
  later.sort((a, b) => a - b);
  // Per second of the schedule: where in the run the slow deliveries were.
  const seconds = [];
  if (t0 !== undefined) {
    for (let i = 0; i < sentAt.length; i++) {
      const s = Math.max(0, Math.floor((sentAt[i] - t0) / 1000));
      (seconds[s] ??= []).push(receivedAt[i] - sentAt[i]);
    }
    for (const list of seconds) list?.sort((a, b) => a - b);
  }
  return {
    samples: all.length,
    p50_ms: round(percentile(all, 0.5), 1),
    p99_ms: round(percentile(all, 0.99), 1),
    max_ms: round(all.at(-1), 1),
    [`p99_after_${skipMs / 1000}s_ms`]: round(percentile(later, 0.99), 1),
    [`max_after_${skipMs / 1000}s_ms`]: round(later.at(-1), 1),
    by_second_p50_ms: Array.from(seconds, (l) => (l ? round(percentile(l, 0.5), 1) : null)),
    by_second_max_ms: Array.from(seconds, (l) => (l ? round(l.at(-1), 1) : null)),
  };
}

process.on("message", (m) => {
  if (m?.type === "stats") {
    process.send({
      type: "stats",
      requests,
      distinct: seen.size,
      firstAt,
      lastAt,
      latency: latency ? latencies(m.t0, m.skipMs ?? 2_000) : undefined,
    });
  } else if (m?.type === "stop") {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  }
});
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => process.send({ type: "listening", port: server.address().port }));
