import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { H, headerText } from "../../src/kafka/handoff-records.js";
import { pipelineHarness, TOPICS, type HarnessOptions } from "../support/pipeline-harness.js";

const ok = { kind: "response", status: 204 } as const;
const hook = "https://hooks.example.com/h";
const acme = (extra: Record<string, unknown> = {}) => ({
  id: "c1",
  tenant_id: "acme",
  name: "n",
  subscriptions: [{ event_type: "*", target_url: hook, headers: {} }],
  max_attempts: 3,
  backoff_ms: 2_000,
  ...extra,
});
const headers = (eventType = "OrderPlaced", tenant = "acme") => ({ "x-tenant-id": tenant, "x-event-type": eventType });

function harness(options: Partial<HarnessOptions> = {}) {
  return pipelineHarness({ configs: [acme()], endpoint: () => ok, ...options });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("every record ends", () => {
  it.each(["NaN", "Infinity", "-Infinity", "1e400"])(
    "a value with %s is dead-lettered as invalid_json and the partition moves on",
    async (poison) => {
      const h = harness();
      h.produce('{"n":1}', headers());
      h.produce(`{"a": ${poison}}`, headers());
      h.produce('{"n":3}', headers());
      await vi.runAllTimersAsync();
      const [letter] = h.topic(TOPICS.deadLetter);
      expect(headerText(letter?.headers, H.reason)).toBe("invalid_json");
      expect(headerText(letter?.headers, H.lastError)).toContain(poison.startsWith("1e") ? "overflows" : "is not JSON");
      expect(h.attempts.size).toBe(2);
      expect(h.committable().get(TOPICS.events)).toBe("3");
    },
  );

  it("an event type no HTTP header can carry is dead-lettered before any attempt", async () => {
    const h = harness();
    h.produce('{"n":1}', headers("注文確定"));
    await vi.runAllTimersAsync();
    expect(h.attempts.size).toBe(0);
    expect(headerText(h.topic(TOPICS.deadLetter)[0]?.headers, H.reason)).toBe("invalid_header");
    expect(h.committable().get(TOPICS.events)).toBe("1");
  });

  it("a sender that throws ends its delivery as an internal_error dead letter, not an open record", async () => {
    const h = harness({ endpoint: () => "throw" });
    h.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    expect(headerText(h.topic(TOPICS.deadLetter)[0]?.headers, H.reason)).toBe("internal_error");
    expect(h.committable().get(TOPICS.events)).toBe("1");
  });

  it("a dead-letter topic that refuses for good does not stop the partition (the record escapes to the log)", async () => {
    const h = harness({ refuseTopic: TOPICS.deadLetter });
    h.produce("not json", headers());
    h.produce('{"n":2}', headers());
    await vi.runAllTimersAsync();
    expect(h.attempts.size).toBe(1);
    expect(h.committable().get(TOPICS.events)).toBe("2");
  });

  it("a tenant bound to other topics is dead-lettered as tenant_not_allowed_on_topic", async () => {
    const h = pipelineHarness({ configs: [acme({ topics: ["payments"] })], endpoint: () => ok });
    h.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    expect(h.attempts.size).toBe(0);
    expect(headerText(h.topic(TOPICS.deadLetter)[0]?.headers, H.reason)).toBe("tenant_not_allowed_on_topic");
  });
});

describe("retries", () => {
  it("a 503 is handed to the retry topic once, with its origin, and delivered from there with the same id", async () => {
    const h = harness({ endpoint: (_r, n) => (n < 3 ? { kind: "response", status: 503 } : ok) });
    h.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    const retries = h.topic(TOPICS.retry);
    expect(retries).toHaveLength(1);
    expect(headerText(retries[0]?.headers, H.origin)).toBe("g");
    expect(headerText(retries[0]?.headers, H.attempts)).toBe("1");
    expect([...h.attempts.values()]).toEqual([3]);
    expect(h.topic(TOPICS.deadLetter)).toHaveLength(0);
    expect(h.committable().get(TOPICS.retry)).toBe("1");
  });

  it("exhausted attempts end in one dead letter whose attempt count is the number made", async () => {
    const h = harness({ endpoint: () => ({ kind: "response", status: 500 }) });
    h.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    const [letter] = h.topic(TOPICS.deadLetter);
    expect(headerText(letter?.headers, H.reason)).toBe("attempts_exhausted");
    expect(headerText(letter?.headers, H.attempts)).toBe("3");
    expect([...h.attempts.values()]).toEqual([3]);
  });

  it("another deployment's retry record is left alone and counted, never delivered", async () => {
    const other = harness({ endpoint: () => ({ kind: "response", status: 503 }), origin: "other-group" });
    other.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    const foreign = other.topic(TOPICS.retry)[0];
    const h = harness();
    h.deps.publisher.publish(TOPICS.retry, foreign!);
    await vi.runAllTimersAsync();
    expect(h.attempts.size).toBe(0);
    expect(h.topic(TOPICS.deadLetter)).toHaveLength(0);
    expect(h.committable().get(TOPICS.retry)).toBe("1");
  });

  it("a retry record whose value was changed is never delivered: dead-lettered as forged_retry_record", async () => {
    const bodies: string[] = [];
    const h = harness({ endpoint: (request) => (bodies.push(request.body), { kind: "response", status: 503 }) });
    h.produce('{"n":1}', headers());
    await vi.advanceTimersByTimeAsync(10);
    const [genuine] = h.topic(TOPICS.retry);
    const attemptsBefore = [...h.attempts.values()];
    await h.deps.publisher.publish(TOPICS.retry, { ...genuine!, value: '{"n":"changed"}' });
    await vi.advanceTimersByTimeAsync(60_000);
    const forged = h.topic(TOPICS.deadLetter).filter((r) => headerText(r.headers, H.reason) === "forged_retry_record");
    expect(forged).toHaveLength(1);
    expect(forged[0]?.value.toString()).toBe('{"n":"changed"}');
    expect(bodies).not.toContain('{"n":"changed"}');
    expect([...h.attempts.values()][0]).toBeGreaterThan(attemptsBefore[0] as number);
  });

  it("a copy of a retry record whose delivery already ended here is left alone (no attempt, no dead letter)", async () => {
    const h = harness({ endpoint: (_r, n) => (n === 1 ? { kind: "response", status: 503 } : ok) });
    h.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    expect([...h.attempts.values()]).toEqual([2]);
    await h.deps.publisher.publish(TOPICS.retry, h.topic(TOPICS.retry)[0]!);
    await vi.runAllTimersAsync();
    expect([...h.attempts.values()]).toEqual([2]);
    expect(h.topic(TOPICS.deadLetter)).toHaveLength(0);
    expect(h.committable().get(TOPICS.retry)).toBe("2");
  });

  it("while the host's breaker is open no attempt is spent: the delivery waits for the probe", async () => {
    const reopensAt = Date.now() + 30_000;
    const h = harness({ reopensAt: () => (Date.now() < reopensAt ? reopensAt : undefined) });
    h.produce('{"n":1}', headers());
    await vi.advanceTimersByTimeAsync(10);
    expect(h.attempts.size).toBe(0);
    expect(headerText(h.topic(TOPICS.retry)[0]?.headers, H.dueAt)).toBe(String(reopensAt));
    await vi.advanceTimersByTimeAsync(29_000);
    expect(h.attempts.size).toBe(0);
    await vi.runAllTimersAsync();
    expect([...h.attempts.values()]).toEqual([1]);
  });

  it("a retry far from due holds no slot: a due one behind it runs", async () => {
    const h = harness({
      maxInFlight: 1,
      configs: [acme({ backoff_ms: 200_000 }), { ...acme({ backoff_ms: 1_000 }), id: "c2", tenant_id: "beta" }],
      endpoint: (_r, n) => (n === 1 ? { kind: "response", status: 503 } : ok),
    });
    h.produce('{"n":1}', headers("E", "acme"));
    h.produce('{"n":2}', headers("E", "beta"));
    await vi.advanceTimersByTimeAsync(5_000);
    // beta's retry (due after 1 s) was delivered while acme's (due after 200 s) still waits.
    expect([...h.attempts.entries()].filter(([, n]) => n === 2)).toHaveLength(1);
    await vi.runAllTimersAsync();
    expect([...h.attempts.values()]).toEqual([2, 2]);
  });
});

describe("the scheduler around the pipeline", () => {
  it("a record fetched again after a rebalance does not run twice in this process", async () => {
    const h = harness();
    const record = h.produce('{"n":1}', headers());
    await vi.runAllTimersAsync();
    const again = h.events.offer(record.topic, record.partition, {
      offset: record.offset,
      lane: undefined,
      at: 0,
      run: async () => ({ kind: "done" }),
      handOver: async () => ({ kind: "done" }),
    });
    expect(again).toBe(false);
    expect([...h.attempts.values()]).toEqual([1]);
  });

  it("letting a partition go hands a waiting retry over (written back as it stands) so its offset can be committed", async () => {
    const h = harness({ endpoint: (_r, n) => (n < 3 ? { kind: "response", status: 503 } : ok) });
    h.produce('{"n":1}', headers());
    await vi.advanceTimersByTimeAsync(1_500);
    expect(h.topic(TOPICS.retry)).toHaveLength(1);
    const letGo = h.retries.letGo(TOPICS.retry, 0, Date.now() + 1_000);
    await vi.advanceTimersByTimeAsync(10);
    expect(await letGo).toBe("1");
    const written = h.topic(TOPICS.retry);
    expect(written).toHaveLength(2);
    expect(headerText(written[1]?.headers, H.deliveryId)).toBe(headerText(written[0]?.headers, H.deliveryId));
  });

  it("ordering partition: one partition's backlog never holds a slot another partition needs", async () => {
    const h = harness({ maxInFlight: 2, ordering: "partition" });
    const started: string[] = [];
    const slow = (name: string) => async () => {
      started.push(name);
      await new Promise((r) => setTimeout(r, 1_000));
      return { kind: "done" } as const;
    };
    for (let i = 0; i < 5; i++)
      h.events.offer("a", 0, { offset: String(i), lane: "a\u00000\u0000", at: 0, run: slow(`a${i}`), handOver: slow("x") });
    h.events.offer("b", 0, { offset: "0", lane: "b\u00000\u0000", at: 0, run: slow("b0"), handOver: slow("x") });
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toEqual(["a0", "b0"]);
    await vi.runAllTimersAsync();
    expect(started).toEqual(["a0", "b0", "a1", "a2", "a3", "a4"]);
  });
});

describe("CloudEvents envelopes", () => {
  const ce = (extra: Record<string, unknown>) => ({
    specversion: "1.0",
    id: "e",
    source: "/s",
    type: "OrderPlaced",
    tenantid: "acme",
    ...extra,
  });

  it("a structured record is delivered with its data as the body", async () => {
    const bodies: string[] = [];
    const h = harness({ endpoint: (req) => (bodies.push(String(req.body)), ok) });
    h.produce(JSON.stringify(ce({ data: { b: 1, a: 2 } })), { "content-type": "application/cloudevents+json" });
    await vi.runAllTimersAsync();
    expect(bodies).toEqual(['{"a":2,"b":1}']);
    expect(h.committable().get(TOPICS.events)).toBe("1");
  });

  it("in a batch each event stands alone: the good ones are delivered, the record is dead-lettered once naming the bad one", async () => {
    const bodies: string[] = [];
    const h = harness({ endpoint: (req) => (bodies.push(String(req.body)), ok) });
    const batch = [ce({ id: "1", data: 1 }), ce({ id: "2", tenantid: "nobody", data: 2 }), ce({ id: "3", data: 3 })];
    h.produce(JSON.stringify(batch), { "content-type": "application/cloudevents-batch+json" });
    await vi.runAllTimersAsync();
    expect(bodies.sort()).toEqual(["1", "3"]);
    const letters = h.topic(TOPICS.deadLetter);
    expect(letters.map((l) => [headerText(l.headers, H.reason), headerText(l.headers, H.lastError)])).toEqual([
      ["unknown_tenant", "event [1]: no callback config for this tenant"],
    ]);
    expect(h.committable().get(TOPICS.events)).toBe("1");
  });
});
