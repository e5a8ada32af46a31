import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RecordEnd, Work } from "../../src/kafka/record-processor.js";
import { laneOf, RecordScheduler } from "../../src/kafka/record-scheduler.js";

const done: RecordEnd = { kind: "done" };
const after =
  (ms: number, end: RecordEnd = done): Work =>
  () =>
    new Promise((resolve) => setTimeout(() => resolve(end), ms));

function scheduler(options: { maxInFlight?: number; maxBufferedPerPartition?: number } = {}) {
  const pauses: string[] = [];
  const s = new RecordScheduler({
    maxInFlight: options.maxInFlight ?? 4,
    maxBufferedPerPartition: options.maxBufferedPerPartition ?? 100,
    logger: pino({ level: "silent" }),
    onPause: (topic, partition, paused) => pauses.push(`${paused ? "pause" : "resume"} ${topic}/${partition}`),
  });
  const offer = (offset: number, run: Work, extra: { at?: number; handOver?: Work; partition?: number; lane?: string } = {}) =>
    s.offer("t", extra.partition ?? 0, {
      offset: String(offset),
      lane: extra.lane,
      at: extra.at ?? 0,
      run,
      handOver: extra.handOver ?? after(0),
    });
  return { s, pauses, offer };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("RecordScheduler", () => {
  it("commits the lowest record not done; an abandoned record keeps the offset below it", async () => {
    const { s, offer } = scheduler();
    offer(0, after(10));
    offer(1, after(5, { kind: "abandoned" }));
    offer(2, after(1));
    await vi.runAllTimersAsync();
    expect(s.uncommitted()).toEqual([{ topic: "t", partition: 0, offset: "1" }]);
  });

  it("pauses a partition whose buffered records reach the cap and resumes it at half", async () => {
    const { pauses, offer } = scheduler({ maxInFlight: 1, maxBufferedPerPartition: 4 });
    for (let i = 0; i < 4; i++) offer(i, after(100));
    expect(pauses).toEqual(["pause t/0"]);
    await vi.advanceTimersByTimeAsync(150);
    expect(pauses).toEqual(["pause t/0"]);
    await vi.advanceTimersByTimeAsync(100);
    expect(pauses).toEqual(["pause t/0", "resume t/0"]);
  });

  it("a record not yet due waits without a slot: later due records run meanwhile", async () => {
    const { s, offer } = scheduler({ maxInFlight: 1 });
    const ran: number[] = [];
    const mark =
      (n: number): Work =>
      async () => (ran.push(n), done);
    offer(0, mark(0), { at: Date.now() + 60_000 });
    offer(1, mark(1));
    await vi.advanceTimersByTimeAsync(10);
    expect(ran).toEqual([1]);
    expect(s.inFlight).toBe(0);
    await vi.runAllTimersAsync();
    expect(ran).toEqual([1, 0]);
  });

  it("a record waiting on something it lends its slot for lets other records start, and takes it back after", async () => {
    const { s, offer } = scheduler({ maxInFlight: 1 });
    const ran: number[] = [];
    let release: () => void = () => undefined;
    const hostFull = new Promise<void>((resolve) => (release = resolve));
    offer(0, async (signals) => {
      await signals.lend!(hostFull);
      ran.push(0);
      return done;
    });
    offer(1, async () => (ran.push(1), done));
    await vi.advanceTimersByTimeAsync(1);
    expect(ran).toEqual([1]);
    expect(s.inFlight).toBe(0);
    release();
    await vi.runAllTimersAsync();
    expect(ran).toEqual([1, 0]);
    expect(s.uncommitted()).toEqual([{ topic: "t", partition: 0, offset: "2" }]);
  });

  it("a newly assigned partition is held, then drops what its previous owner committed meanwhile", async () => {
    const { s, offer } = scheduler();
    s.assign("t", 0, true);
    const ran: number[] = [];
    for (let i = 10; i < 15; i++) offer(i, async () => (ran.push(i), done));
    await vi.advanceTimersByTimeAsync(10);
    expect(ran).toEqual([]);
    expect(s.release("t", 0, "13")).toBe(3);
    await vi.runAllTimersAsync();
    expect(ran).toEqual([13, 14]);
    expect(s.uncommitted()).toEqual([{ topic: "t", partition: 0, offset: "15" }]);
  });

  it("a partition held to be read again from its committed offset drops every held record and takes the refetch in order", async () => {
    const { s, offer } = scheduler();
    s.assign("t", 0, true);
    const ran: number[] = [];
    for (let i = 20; i < 23; i++) offer(i, async () => (ran.push(i), done));
    expect(s.release("t", 0, "10", true)).toBe(3);
    for (let i = 10; i < 23; i++) offer(i, async () => (ran.push(i), done));
    await vi.runAllTimersAsync();
    expect(ran).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
    expect(s.uncommitted()).toEqual([{ topic: "t", partition: 0, offset: "23" }]);
  });

  it("letting go hands over parked records, tells running ones to hand over, and returns the last offset", async () => {
    const { s, offer } = scheduler();
    const handedOver: number[] = [];
    const running: Work = (signals) =>
      new Promise((resolve) => signals.stopping.addEventListener("abort", () => resolve(done), { once: true }));
    offer(0, running);
    offer(1, after(0), { at: Date.now() + 60_000, handOver: async () => (handedOver.push(1), done) });
    await vi.advanceTimersByTimeAsync(1);
    const offset = s.letGo("t", 0, Date.now() + 5_000);
    await vi.advanceTimersByTimeAsync(1);
    expect(await offset).toBe("2");
    expect(handedOver).toEqual([1]);
    expect(s.owned()).toEqual([]);
  });

  it("after let-go the same offsets can be taken again by a later assignment", async () => {
    const { s, offer } = scheduler();
    offer(0, after(0));
    await vi.runAllTimersAsync();
    await s.letGo("t", 0, Date.now());
    expect(offer(0, after(0))).toBe(true);
  });

  it("lanes: key ordering runs one key's records in order, other keys in parallel", async () => {
    const { offer } = scheduler({ maxInFlight: 8 });
    const log: string[] = [];
    const step =
      (name: string, ms: number): Work =>
      async () => {
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`end ${name}`);
        return done;
      };
    const k = (key: string) => laneOf("key", "t", 0, Buffer.from(key));
    offer(0, step("a1", 10), { lane: k("a") });
    offer(1, step("b1", 1), { lane: k("b") });
    offer(2, step("a2", 1), { lane: k("a") });
    await vi.runAllTimersAsync();
    expect(log).toEqual(["start a1", "start b1", "end b1", "end a1", "start a2", "end a2"]);
    expect(laneOf("key", "t", 0, null)).toBeUndefined();
    expect(laneOf("none", "t", 0, Buffer.from("a"))).toBeUndefined();
  });

  it("a backlog of records that all lend their slot at once starts one after another, not one inside another (no stack overflow)", async () => {
    const errors: string[] = [];
    const s = new RecordScheduler({
      maxInFlight: 1,
      maxBufferedPerPartition: 100_000,
      logger: { ...pino({ level: "silent" }), error: (o: { err?: string }) => errors.push(String(o.err)) } as unknown as pino.Logger,
      onPause: () => undefined,
    });
    const waiting: (() => void)[] = [];
    // Each record queues for something (a full host) and lends its slot while it waits, as the
    // delivery stage does; work runs synchronously up to that point.
    const lending: Work = async (signals) => {
      await signals.lend?.(new Promise<void>((resolve) => waiting.push(resolve)));
      return done;
    };
    const n = 20_000;
    s.offer("t", 0, { offset: "0", lane: undefined, at: 0, run: after(10), handOver: after(0) });
    for (let i = 1; i <= n; i++) s.offer("t", 0, { offset: String(i), lane: undefined, at: 0, run: lending, handOver: after(0) });
    await vi.advanceTimersByTimeAsync(10);
    // A pump that used up its time slice continues on the next turn (setImmediate, faked here).
    for (let turn = 0; waiting.length < n && turn < n; turn++) await vi.advanceTimersByTimeAsync(1);
    expect(errors).toEqual([]);
    expect(waiting).toHaveLength(n);
    waiting.forEach((resolve) => resolve());
    await vi.runAllTimersAsync();
    expect(s.uncommitted()).toEqual([{ topic: "t", partition: 0, offset: String(n + 1) }]);
  });
});
