import { describe, expect, it, vi } from "vitest";
import {
  carriedHeaders,
  deliveryDeadLetter,
  H,
  HandoffFormatError,
  headerText,
  readDeliveryHandoff,
  retryRecord,
  undispatchableDeadLetter,
  type DeliveryHandoff,
} from "../../src/kafka/handoff-records.js";
import { MAX_HANDOFF_VALUE_BYTES } from "../../src/kafka/handoff-records.js";
import type { RecordHeaders } from "../../src/kafka/record-decoder.js";

const handoff: DeliveryHandoff = {
  deliveryId: "0f8fad5b-d9cb-869f-a165-70867728950e",
  executionId: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
  configId: "cfg-1",
  tenantId: "acme",
  eventType: "order.created",
  subscriptionEventType: "*",
  subscriptionFingerprint: "0123456789abcdef",
  target: "https://hooks.example.com/…",
  attempts: 3,
  createdAt: "2024-01-01T00:00:00.000Z",
  occurredAt: 1_704_067_200_123,
  lastError: "HTTP 503",
  responseStatus: 503,
  source: { topic: "orders", partition: 2, offset: "9007199254740993" },
};

const minimal: DeliveryHandoff = { ...handoff, lastError: null, responseStatus: null, source: null };

/** Headers as kafkajs hands them to a consumer: every value a Buffer. */
function asConsumed(headers: Record<string, Buffer | string>): RecordHeaders {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)]));
}

const original: RecordHeaders = {
  "x-tenant-id": Buffer.from("acme"),
  "x-event-type": "order.created",
  traceparent: "00-abc-def-01",
  [H.attempts]: "99",
  [H.dueAt]: "1",
  [H.reason]: "old reason",
  [H.status]: "FAILED",
};

describe("header names", () => {
  it("are all ours, prefixed callback-", () => {
    for (const name of Object.values(H)) expect(name).toMatch(/^callback-[a-z-]+$/);
    expect(new Set(Object.values(H)).size).toBe(Object.values(H).length);
  });
});

describe("headerText", () => {
  it("reads strings, Buffers and the first value of an array", () => {
    expect(headerText({ a: "x" }, "a")).toBe("x");
    expect(headerText({ a: Buffer.from("y") }, "a")).toBe("y");
    expect(headerText({ a: [Buffer.from("first"), "second"] }, "a")).toBe("first");
    expect(headerText({ a: undefined }, "a")).toBeUndefined();
    expect(headerText({}, "a")).toBeUndefined();
    expect(headerText(undefined, "a")).toBeUndefined();
  });
});

describe("carriedHeaders", () => {
  it("drops every callback- header (ours, and under the MAC), an older version's too, and keeps the rest", () => {
    const all: Record<string, string> = {
      traceparent: "t",
      "x-tenant-id": "acme",
      "callback-target-url": "https://old.example/secret-token",
    };
    for (const name of Object.values(H)) all[name] = "ours";
    expect(carriedHeaders(all)).toEqual({ traceparent: "t", "x-tenant-id": "acme" });
  });

  it("keeps Buffers as they are, the first of repeated values, and skips undefined", () => {
    const buf = Buffer.from("acme");
    const out = carriedHeaders({ a: buf, b: [Buffer.from("1"), Buffer.from("2")], c: undefined });
    expect(out.a).toBe(buf);
    expect(out.b?.toString()).toBe("1");
    expect("c" in out).toBe(false);
  });

  it("handles no headers", () => {
    expect(carriedHeaders(undefined)).toEqual({});
    expect(carriedHeaders({})).toEqual({});
  });
});

describe("retryRecord", () => {
  it("round-trips every field through readDeliveryHandoff, with the due time", () => {
    const record = retryRecord(handoff, '{"a":1}', 1_704_067_260_000, original, null, "group-a");
    const read = { ...handoff, dueAt: 1_704_067_260_000, origin: "group-a", slotReserved: false };
    expect(readDeliveryHandoff(record.headers)).toEqual(read);
    expect(readDeliveryHandoff(asConsumed(record.headers))).toEqual(read);
    const reserved = retryRecord(handoff, '{"a":1}', 1_704_067_260_000, original, null, "group-a", true);
    expect(readDeliveryHandoff(asConsumed(reserved.headers))).toEqual({ ...read, slotReserved: true });
  });

  it("round-trips null lastError, responseStatus and source", () => {
    const record = retryRecord(minimal, "{}", 5, undefined, null, "group-a");
    expect(record.headers).not.toHaveProperty(H.lastError);
    expect(record.headers).not.toHaveProperty(H.responseStatus);
    expect(record.headers).not.toHaveProperty(H.source);
    expect(readDeliveryHandoff(asConsumed(record.headers))).toEqual({ ...minimal, dueAt: 5, origin: "group-a", slotReserved: false });
  });

  it("round-trips awkward text: non-ASCII, quotes, an empty last error", () => {
    const h = { ...handoff, lastError: 'connect ECONNREFUSED "127.0.0.1" — é', tenantId: "société" };
    expect(readDeliveryHandoff(asConsumed(retryRecord(h, "{}", 1, undefined, null, "group-a").headers))).toMatchObject({
      lastError: h.lastError,
      tenantId: "société",
    });
    const empty = { ...handoff, lastError: "" };
    expect(readDeliveryHandoff(retryRecord(empty, "{}", 1, undefined, null, "group-a").headers).lastError).toBe("");
  });

  it("carries the body, the original key, and the original's non-callback headers", () => {
    const record = retryRecord(handoff, '{"a":1}', 42, original, Buffer.from("order-7"), "group-a");
    expect(record.value).toBe('{"a":1}');
    expect(record.key?.toString()).toBe("order-7");
    expect(record.headers.traceparent).toBe("00-abc-def-01");
    expect(record.headers["x-tenant-id"]?.toString()).toBe("acme");
    // Ours are fresh, not the original's stale ones.
    expect(record.headers[H.attempts]).toBe("3");
    expect(record.headers[H.dueAt]).toBe("42");
    expect(record.headers).not.toHaveProperty(H.reason);
    expect(record.headers).not.toHaveProperty(H.status);
  });

  it("is keyed by the delivery id when the original had no key", () => {
    expect(retryRecord(handoff, "{}", 1, undefined, null, "group-a").key).toBe(handoff.deliveryId);
  });

  it("writes every header as text", () => {
    const record = retryRecord(handoff, "{}", 1, undefined, null, "group-a");
    for (const value of Object.values(record.headers)) expect(typeof value).toBe("string");
    expect(record.headers[H.source]).toBe(JSON.stringify(handoff.source));
    expect(record.headers[H.occurredAt]).toBe("1704067200123");
    expect(record.headers[H.responseStatus]).toBe("503");
  });

  it("a retry of a retry reads back the newer values", () => {
    const first = retryRecord(handoff, "{}", 1, original, null, "group-a");
    const second = retryRecord(
      { ...handoff, attempts: 4, lastError: "timeout", responseStatus: null },
      "{}",
      2,
      asConsumed(first.headers),
      null,
      "group-a",
    );
    expect(readDeliveryHandoff(asConsumed(second.headers))).toMatchObject({
      attempts: 4,
      lastError: "timeout",
      responseStatus: null,
      dueAt: 2,
    });
  });
});

describe("deliveryDeadLetter", () => {
  it("says FAILED, why, and when, and still reads back as the handoff", () => {
    const record = deliveryDeadLetter(handoff, '{"a":1}', "attempts_exhausted", original, null, 1_704_070_000_000);
    expect(record.headers[H.status]).toBe("FAILED");
    expect(record.headers[H.reason]).toBe("attempts_exhausted");
    expect(record.headers[H.deadLetteredAt]).toBe("1704070000000");
    expect(record.headers).not.toHaveProperty(H.dueAt);
    expect(record.headers.traceparent).toBe("00-abc-def-01");
    expect(record.value).toBe('{"a":1}');
    expect(record.key).toBe(handoff.deliveryId);
    expect(readDeliveryHandoff(asConsumed(record.headers))).toEqual({ ...handoff, dueAt: null, origin: undefined, slotReserved: false });
  });

  it("keeps the original key", () => {
    expect(deliveryDeadLetter(handoff, "{}", "final_status", undefined, "k", 0).key).toBe("k");
  });

  it("replaces a retry record's due time and reason", () => {
    const retry = retryRecord(handoff, "{}", 99, original, null, "group-a");
    const dead = deliveryDeadLetter(handoff, "{}", "final_status", asConsumed(retry.headers), null, 7);
    expect(dead.headers).not.toHaveProperty(H.dueAt);
    expect(dead.headers[H.reason]).toBe("final_status");
  });
});

describe("undispatchableDeadLetter", () => {
  const source = { topic: "orders", partition: 0, offset: "12" };

  it("keeps the record's bytes, key and headers, and says why", () => {
    const value = Buffer.from([0xff, 0x00, 0x01]);
    const record = undispatchableDeadLetter(value, original, "k", source, "invalid_json", "Unexpected token", 1000);
    expect(record.value).toBe(value);
    expect(record.key).toBe("k");
    expect(record.headers[H.status]).toBe("UNDISPATCHABLE");
    expect(record.headers[H.reason]).toBe("invalid_json");
    expect(record.headers[H.lastError]).toBe("Unexpected token");
    expect(JSON.parse(record.headers[H.source] as string)).toEqual(source);
    expect(record.headers[H.deadLetteredAt]).toBe("1000");
    expect(record.headers.traceparent).toBe("00-abc-def-01");
    expect(record.headers).not.toHaveProperty(H.attempts);
    expect(record.headers).not.toHaveProperty(H.dueAt);
  });

  it("writes an empty value for a tombstone and keeps a null key", () => {
    const record = undispatchableDeadLetter(null, undefined, null, source, "missing_tenant", "no header", 1);
    expect(Buffer.isBuffer(record.value)).toBe(true);
    expect(record.value.length).toBe(0);
    expect(record.key).toBeNull();
  });

  it("cannot be read as a delivery handoff", () => {
    const record = undispatchableDeadLetter(null, undefined, null, source, "missing_tenant", "no header", 1);
    expect(() => readDeliveryHandoff(record.headers)).toThrow(HandoffFormatError);
  });
});

describe("readDeliveryHandoff", () => {
  const good = retryRecord(handoff, "{}", 10, undefined, null, "group-a").headers;
  const without = (name: string) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== name));

  const required = [
    H.deliveryId,
    H.executionId,
    H.configId,
    H.tenantId,
    H.eventType,
    H.subscriptionEventType,
    H.subscription,
    H.target,
    H.attempts,
    H.createdAt,
  ];

  it.each(required)("a missing %s is a HandoffFormatError naming it", (name) => {
    expect(() => readDeliveryHandoff(without(name))).toThrow(HandoffFormatError);
    expect(() => readDeliveryHandoff(without(name))).toThrow(name);
  });

  it.each(required)("an empty %s is a HandoffFormatError naming it", (name) => {
    expect(() => readDeliveryHandoff({ ...good, [name]: "" })).toThrow(HandoffFormatError);
    expect(() => readDeliveryHandoff({ ...good, [name]: Buffer.alloc(0) })).toThrow(name);
  });

  it.each([
    [H.attempts, "three"],
    [H.occurredAt, "yesterday"],
    [H.responseStatus, "5xx"],
    [H.dueAt, "soon"],
    [H.dueAt, "Infinity"],
    [H.attempts, "NaN"],
  ])("a non-number %s (%j) is a HandoffFormatError naming it", (name, value) => {
    expect(() => readDeliveryHandoff({ ...good, [name]: value })).toThrow(HandoffFormatError);
    expect(() => readDeliveryHandoff({ ...good, [name]: value })).toThrow(name);
  });

  it("a source that is not JSON is a HandoffFormatError naming it", () => {
    expect(() => readDeliveryHandoff({ ...good, [H.source]: "{orders" })).toThrow(HandoffFormatError);
    expect(() => readDeliveryHandoff({ ...good, [H.source]: "{orders" })).toThrow(H.source);
  });

  it("the error is an Error subclass", () => {
    let caught: unknown;
    try {
      readDeliveryHandoff({});
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(HandoffFormatError);
    expect(caught).toBeInstanceOf(Error);
  });

  it("without headers at all names the first required header", () => {
    expect(() => readDeliveryHandoff(undefined)).toThrow(H.deliveryId);
  });

  it("defaults a missing occurred-at to now, and optional fields to null", () => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ["Date"] });
    try {
      const headers = without(H.occurredAt);
      delete headers[H.dueAt];
      const read = readDeliveryHandoff(headers);
      expect(read.occurredAt).toBe(1_700_000_000_000);
      expect(read.dueAt).toBeNull();
      expect(read.responseStatus).toBe(503);
      const bare = readDeliveryHandoff(retryRecord(minimal, "{}", 1, undefined, null, "group-a").headers);
      expect(bare.lastError).toBeNull();
      expect(bare.responseStatus).toBeNull();
      expect(bare.source).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it("reads repeated headers by their first value", () => {
    const read = readDeliveryHandoff({ ...good, [H.attempts]: [Buffer.from("2"), Buffer.from("7")] });
    expect(read.attempts).toBe(2);
  });
});

describe("records stay within Kafka's record size", () => {
  const source = { topic: "orders", partition: 0, offset: "7" };

  it("cuts a dead letter's value above the limit and says how large it was", () => {
    const big = Buffer.alloc(MAX_HANDOFF_VALUE_BYTES + 10, 0x61);
    const record = undispatchableDeadLetter(big, {}, null, source, "invalid_json", "too deep", 1);
    expect(Buffer.byteLength(record.value)).toBe(MAX_HANDOFF_VALUE_BYTES);
    expect(record.headers[H.valueTruncated]).toBe(String(big.length));
  });

  it("keeps a value at the limit whole", () => {
    const exact = Buffer.alloc(MAX_HANDOFF_VALUE_BYTES, 0x61);
    const record = undispatchableDeadLetter(exact, {}, null, source, "invalid_json", "x", 1);
    expect(Buffer.byteLength(record.value)).toBe(MAX_HANDOFF_VALUE_BYTES);
    expect(record.headers[H.valueTruncated]).toBeUndefined();
  });

  it("drops oversized carried headers and counts them", () => {
    const headers = { small: Buffer.from("ok"), huge: Buffer.alloc(100 * 1024, 0x62) };
    const carried = carriedHeaders(headers);
    expect(carried.small?.toString()).toBe("ok");
    expect(carried.huge).toBeUndefined();
    expect(carried[H.headersDropped]).toBe("1");
  });
});

describe("keys stay short", () => {
  const source = { topic: "orders", partition: 0, offset: "7" };

  it("replaces a key above 1 KB by its SHA-256 and records the original length", () => {
    const key = "k".repeat(192 * 1024);
    const record = undispatchableDeadLetter(Buffer.from("x"), {}, key, source, "invalid_json", "x", 1);
    expect(record.key).toMatch(/^[0-9a-f]{64}$/);
    expect(record.headers[H.keyHashed]).toBe(String(192 * 1024));
    // Same key, same replacement: records of one key still share a partition.
    expect(undispatchableDeadLetter(Buffer.from("y"), {}, key, source, "invalid_json", "y", 2).key).toBe(record.key);
  });

  it("keeps a short key as it is", () => {
    const record = undispatchableDeadLetter(Buffer.from("x"), {}, "order-1", source, "invalid_json", "x", 1);
    expect(record.key).toBe("order-1");
    expect(record.headers[H.keyHashed]).toBeUndefined();
  });
});
