// The delivery stage as the one owner of waiting, on a fake clock: schedules, Retry-After, rate
// limits, breaker probes and hand-offs to delay tiers, each decided in one place.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { z } from "zod";
import type { CallbackConfig } from "../../src/domain/models.js";
import { H, headerText } from "../../src/kafka/handoff-records.js";
import { placeWait } from "../../src/pipeline/delivery-stage.js";
import { pipelineHarness, TOPICS, type Behaviour, type HarnessOptions } from "../support/pipeline-harness.js";

const ok = { kind: "response", status: 204 } as const;
const unavailable = { kind: "response", status: 503 } as const;
const hook = "https://hooks.example.com/h";
const other = "https://other.example.com/h";
const headers = { "x-tenant-id": "acme", "x-event-type": "OrderPlaced" };
const T0 = Date.UTC(2026, 0, 1);

type Config = z.input<typeof CallbackConfig>;
type Subscription = NonNullable<Config["subscriptions"]>[number];

function config(extra: Partial<Config> = {}, subscriptions: Subscription[] = [{ event_type: "*", target_url: hook }]): Config {
  return { id: "c1", tenant_id: "acme", name: "n", subscriptions, ...extra };
}

/** A harness whose endpoint answers by attempt number and records when each attempt happened. */
function timed(options: Partial<HarnessOptions> & { answer?: (n: number, url: string) => Behaviour } = {}) {
  const times: { url: string; n: number; at: number }[] = [];
  const h = pipelineHarness({
    configs: [config()],
    ...options,
    endpoint: (request, n) => {
      times.push({ url: request.url.toString(), n, at: Date.now() - T0 });
      return options.answer?.(n, request.url.toString()) ?? ok;
    },
  });
  return { h, times };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("placeWait: where a wait happens", () => {
  it.each([
    // delay, mode, durable, stopping, in-memory limit, placement
    [0, "event", true, false, 1_000, "now"],
    [500, "event", true, false, 1_000, "sleep"],
    [1_500, "event", true, false, 1_000, "topic"],
    [500, "event", true, true, 1_000, "topic"],
    [9_000, "retry", true, false, 10_000, "park"],
    [11_000, "retry", true, false, 10_000, "topic"],
    [3_600_000, "retry", false, false, Infinity, "sleep"],
    [3_600_000, "event", false, true, 1_000, "sleep"],
  ] as const)("%i ms in %s mode (durable %s, stopping %s, limit %s) waits: %s", (delay, mode, durable, stopping, limit, placement) => {
    expect(placeWait(delay, mode, durable, stopping, limit)).toBe(placement);
  });
});

describe("retry schedules", () => {
  it("attempts follow the schedule exactly, and the last entry ends it (attempts = entries + 1)", async () => {
    const { h, times } = timed({ configs: [config({ retry_schedule: [1_000, 5_000, 20_000] })], answer: () => unavailable });
    h.produce('{"n":1}', headers);
    await vi.runAllTimersAsync();
    expect(times.map((t) => t.at)).toEqual([0, 1_000, 6_000, 26_000]);
    const [letter] = h.topic(TOPICS.deadLetter);
    expect(headerText(letter?.headers, H.reason)).toBe("attempts_exhausted");
    expect(headerText(letter?.headers, H.attempts)).toBe("4");
  });

  it("a wait beyond the in-process budget goes to the retry topic with its due time, and no attempt comes before it", async () => {
    const { h, times } = timed({
      configs: [config({ retry_schedule: [3_000, 4_000] })],
      answer: (n) => (n < 3 ? unavailable : ok),
    });
    h.produce('{"n":1}', headers);
    await vi.runAllTimersAsync();
    expect(times.map((t) => t.at)).toEqual([0, 3_000, 7_000]);
    const [retry] = h.topic(TOPICS.retry);
    expect(headerText(retry?.headers, H.dueAt)).toBe(String(T0 + 3_000));
    // One write per delivery: the retry consumer keeps it in memory for its second wait.
    expect(h.topic(TOPICS.retry)).toHaveLength(1);
    expect(h.delivered.size).toBe(1);
  });

  it("Retry-After wins when it is later than the schedule's entry, and the schedule when it is later", async () => {
    const { h, times } = timed({
      configs: [config({ retry_schedule: [500, 500] })],
      answer: (n) => (n === 1 ? { ...unavailable, retryAfterMs: 2_000 } : n === 2 ? { ...unavailable, retryAfterMs: 100 } : ok),
    });
    h.produce('{"n":1}', headers);
    await vi.runAllTimersAsync();
    expect(times.map((t) => t.at)).toEqual([0, 2_000, 2_500]);
  });

  it("a long wait is handed to the delay tier it fits, and re-read only when its tier's delay has passed", async () => {
    const { h, times } = timed({
      configs: [config({ retry_schedule: [25_000] })],
      tiersMs: [10_000, 60_000],
      answer: (n) => (n === 1 ? unavailable : ok),
    });
    h.produce('{"n":1}', headers);
    await vi.runAllTimersAsync();
    // 25 s: the 10 s tier; read at 10 s with 15 s left: the 10 s tier again; at 20 s, 5 s left: parked.
    expect(h.published.map((p) => p.topic)).toEqual([`${TOPICS.retry}.10s`, `${TOPICS.retry}.10s`]);
    expect(times.map((t) => t.at)).toEqual([0, 25_000]);
    expect(h.committable().get(`${TOPICS.retry}.10s`)).toBe("2");
  });
});

describe("waiting holds no slot", () => {
  it("a delivery waiting for its backoff holds no host slot: every first attempt to a failing host happens at once", async () => {
    const { h, times } = timed({
      configs: [config({ retry_schedule: [800, 800] })],
      perHost: 2,
      maxInFlight: 64,
      answer: (n) => (n < 3 ? unavailable : ok),
    });
    for (let i = 0; i < 40; i++) h.produce(`{"n":${i}}`, headers);
    await vi.advanceTimersByTimeAsync(10);
    expect(times.filter((t) => t.n === 1)).toHaveLength(40);
    await vi.runAllTimersAsync();
    expect(h.delivered.size).toBe(40);
  });
});

describe("rate limits", () => {
  it("a subscription's limit spaces its attempts, spends no attempt on waiting, and leaves another subscription alone", async () => {
    const { h, times } = timed({
      configs: [
        config({}, [
          { event_type: "*", target_url: hook, rate_limit: { per_second: 10 } },
          { event_type: "*", target_url: other },
        ]),
      ],
      inProcessBudgetMs: 60_000,
    });
    for (let i = 0; i < 20; i++) h.produce(`{"n":${i}}`, headers);
    await vi.runAllTimersAsync();
    const limited = times.filter((t) => t.url === hook).map((t) => t.at);
    const free = times.filter((t) => t.url === other).map((t) => t.at);
    expect(limited).toEqual(Array.from({ length: 20 }, (_, i) => i * 100));
    expect(free.every((at) => at === 0)).toBe(true);
    expect(times.every((t) => t.n === 1)).toBe(true);
  });

  it("a config's limit is shared by its subscriptions: in total, not each", async () => {
    const { h, times } = timed({
      configs: [
        config({ rate_limit: { per_second: 10 } }, [
          { event_type: "*", target_url: hook },
          { event_type: "*", target_url: other },
        ]),
      ],
      inProcessBudgetMs: 60_000,
    });
    for (let i = 0; i < 10; i++) h.produce(`{"n":${i}}`, headers);
    await vi.runAllTimersAsync();
    const at = times.map((t) => t.at).sort((a, b) => a - b);
    expect(at).toEqual(Array.from({ length: 20 }, (_, i) => i * 100));
  });

  it("past the in-process budget a limited delivery waits in the retry topic for its reserved slot, and goes then without asking again", async () => {
    const { h, times } = timed({
      configs: [config({}, [{ event_type: "*", target_url: hook, rate_limit: { per_second: 2 } }])],
      inProcessBudgetMs: 1_000,
    });
    for (let i = 0; i < 6; i++) h.produce(`{"n":${i}}`, headers);
    await vi.runAllTimersAsync();
    // Slots at 0, 0.5, 1 s in process; 1.5, 2, 2.5 s through the retry topic.
    expect(times.map((t) => t.at).sort((a, b) => a - b)).toEqual([0, 500, 1_000, 1_500, 2_000, 2_500]);
    const retries = h.topic(TOPICS.retry);
    expect(retries.map((r) => [headerText(r.headers, H.dueAt), headerText(r.headers, H.slotReserved)])).toEqual(
      [1_500, 2_000, 2_500].map((t) => [String(T0 + t), "1"]),
    );
    expect(times.every((t) => t.n === 1)).toBe(true);
    expect(h.delivered.size).toBe(6);
  });
});

describe("breakers", () => {
  it("an open breaker costs no attempt: the delivery waits for its probe time and then goes", async () => {
    const { h, times } = timed({ reopensAt: () => (Date.now() < T0 + 5_000 ? T0 + 5_000 : undefined) });
    h.produce('{"n":1}', headers);
    await vi.runAllTimersAsync();
    expect(times).toHaveLength(1);
    expect(times[0]?.at).toBeGreaterThanOrEqual(5_000);
    expect(headerText(h.topic(TOPICS.retry)[0]?.headers, H.attempts)).toBe("0");
  });
});
