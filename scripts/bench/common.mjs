// Shared by scripts/bench.mjs and its child processes: the record payload, the hand-written
// canonical form, one clock for every process, and /proc readers.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

export const TENANT = "acme";
export const EVENT_TYPE = "OrderPlaced";
export const SECRET = "bench-secret";
export const HEADERS = { "x-tenant-id": TENANT, "x-event-type": EVENT_TYPE };
export const DELIVERY_ID_HEADER = "x-pyfly-delivery-id";

/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable between processes on one
 * machine (each process's timeOrigin is taken from the same system clock).
 */
export const nowMs = () => performance.timeOrigin + performance.now();

/**
 * Record `seq` as JSON text of about `bytes` bytes (UTF-8): an order with items, a few non-ASCII
 * characters (the canonical form escapes them) and `sent_at_us`, the produce time in microseconds,
 * which the receiver reads back for latency. Every record of a run has the same shape and size.
 */
export function payloadFactory(bytes) {
  const build = (seq, sentAtUs, items, pad) => ({
    event_id: `evt-${String(seq).padStart(10, "0")}`,
    seq,
    sent_at_us: sentAtUs,
    type: EVENT_TYPE,
    tenant: TENANT,
    order: {
      id: 100000 + seq,
      currency: "EUR",
      customer: { id: `c-${seq % 997}`, name: "Zoë Müller", email: "zoe@example.com", vip: seq % 5 === 0 },
      items: Array.from({ length: items }, (_, j) => ({
        sku: `SKU-${(seq * 7 + j) % 10007}`,
        name: `Produit n°${j} – ünïcödé`,
        price: 12.5 + j,
        qty: (seq + j) % 7,
        tags: ["a", "b"],
      })),
      note: "x".repeat(pad),
    },
  });
  const sizeOf = (o) => Buffer.byteLength(JSON.stringify(o));
  const probe = 1_700_000_000_000_000;
  let items = 0;
  while (items < 10_000 && sizeOf(build(99_999, probe, items + 1, 0)) <= bytes) items += 1;
  const pad = Math.max(0, bytes - sizeOf(build(99_999, probe, items, 0)));
  return (seq, sentAtUs = 0) => JSON.stringify(build(seq, sentAtUs, items, pad));
}

/** The hand-written loop's canonical form: keys sorted at every level, no whitespace. */
export function sortedStringify(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(sortedStringify).join(",")}]`;
  const keys = Object.keys(value).sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ",";
    out += `${JSON.stringify(keys[i])}:${sortedStringify(value[keys[i]])}`;
  }
  return `${out}}`;
}

let clockTicks;
function ticksPerSecond() {
  if (clockTicks === undefined) {
    const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    clockTicks = Number(r.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** utime + stime of `pid` in seconds (10 ms resolution), or undefined once it is gone. */
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** VmHWM (peak resident set) and VmRSS of `pid` in MiB, or undefined once it is gone. */
export function procMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { hwmMb: kb("VmHWM") / 1024, rssMb: kb("VmRSS") / 1024 };
  } catch {
    return undefined;
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export const round = (n, digits = 0) => (n === undefined || !Number.isFinite(n) ? undefined : Number(n.toFixed(digits)));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** For the contender children: the JSON configuration the parent passes as argv[2]. */
export function childConfig() {
  return JSON.parse(process.argv[2] ?? "{}");
}

/** For the contender children: exit when the parent says stop, or when it goes away. */
export function onStop(cleanup) {
  const stop = async () => {
    const timer = setTimeout(() => process.exit(0), 3_000);
    timer.unref();
    try {
      await cleanup();
    } finally {
      process.exit(0);
    }
  };
  process.on("message", (m) => {
    if (m?.type === "stop") void stop();
  });
  process.on("disconnect", () => process.exit(0));
}
