import { describe, expect, it } from "vitest";
import { HostSlots } from "../../src/delivery/host-slots.js";
import { Semaphore } from "../../src/shared/semaphore.js";

/** Lets every queued promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A promise plus its resolve/reject, for tasks the test finishes by hand. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Records when a promise settles, without awaiting it. */
function track<T>(p: Promise<T>) {
  const state: { settled: boolean; value?: T } = { settled: false };
  void p.then((value) => {
    state.settled = true;
    state.value = value;
  });
  return state;
}

describe("Semaphore", () => {
  it("tryAcquire takes slots up to the capacity", () => {
    const s = new Semaphore(2);
    expect(s.full).toBe(false);
    expect(s.tryAcquire()).toBe(true);
    expect(s.tryAcquire()).toBe(true);
    expect(s.inUse).toBe(2);
    expect(s.full).toBe(true);
    expect(s.tryAcquire()).toBe(false);
    expect(s.inUse).toBe(2);
    s.release();
    expect(s.inUse).toBe(1);
    expect(s.full).toBe(false);
    expect(s.tryAcquire()).toBe(true);
  });

  it("acquire resolves at once while a slot is free", async () => {
    const s = new Semaphore(1);
    await expect(s.acquire()).resolves.toBe(true);
    expect(s.inUse).toBe(1);
  });

  it("acquire waits for a release when full", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const waiting = track(s.acquire());
    await settle();
    expect(waiting.settled).toBe(false);
    s.release();
    await settle();
    expect(waiting).toEqual({ settled: true, value: true });
    // The slot passed straight to the waiter: still one in use, none free.
    expect(s.inUse).toBe(1);
    expect(s.tryAcquire()).toBe(false);
  });

  it("hands released slots to waiters in FIFO order, one per release", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => s.acquire().then(() => order.push(n)));
    await settle();
    expect(order).toEqual([]);
    s.release();
    await settle();
    expect(order).toEqual([1]);
    s.release();
    await settle();
    expect(order).toEqual([1, 2]);
    s.release();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
    expect(s.inUse).toBe(1);
    s.release();
    expect(s.inUse).toBe(0);
  });

  it("a waiter does not jump ahead of tryAcquire callers after a handover", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const w = track(s.acquire());
    s.release();
    // The slot belongs to the waiter now, even before its promise callback runs.
    expect(s.tryAcquire()).toBe(false);
    await settle();
    expect(w.value).toBe(true);
  });

  it("an aborted waiter resolves false and takes no slot", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const ac = new AbortController();
    const p = s.acquire(ac.signal);
    ac.abort();
    await expect(p).resolves.toBe(false);
    expect(s.inUse).toBe(1);
    s.release();
    expect(s.inUse).toBe(0);
    // Nothing leaked: the full capacity is available again.
    expect(s.tryAcquire()).toBe(true);
    expect(s.tryAcquire()).toBe(false);
  });

  it("an aborted waiter is removed from the queue, so the next waiter gets the slot", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const ac = new AbortController();
    const first = track(s.acquire(ac.signal));
    const second = track(s.acquire());
    ac.abort();
    await settle();
    expect(first).toEqual({ settled: true, value: false });
    s.release();
    await settle();
    expect(second).toEqual({ settled: true, value: true });
    expect(s.inUse).toBe(1);
  });

  it("an already-aborted signal on a full semaphore resolves false at once", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    await expect(s.acquire(AbortSignal.abort())).resolves.toBe(false);
    s.release();
    expect(s.inUse).toBe(0);
    expect(s.tryAcquire()).toBe(true);
  });

  it("aborting after being granted changes nothing", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const ac = new AbortController();
    const p = s.acquire(ac.signal);
    s.release();
    await expect(p).resolves.toBe(true);
    ac.abort();
    expect(s.inUse).toBe(1);
  });
});

describe("HostSlots", () => {
  it("caps each host at perHost slots", async () => {
    const slots = new HostSlots(2);
    await expect(slots.acquire("a:443", 1000)).resolves.toBe(true);
    await expect(slots.acquire("a:443", 1000)).resolves.toBe(true);
    await expect(slots.acquire("a:443", 20)).resolves.toBe(false);
  });

  it("does not let one host's use affect another", async () => {
    const slots = new HostSlots(1);
    await expect(slots.acquire("a:443", 1000)).resolves.toBe(true);
    await expect(slots.acquire("b:443", 0)).resolves.toBe(true);
    await expect(slots.acquire("a:80", 0)).resolves.toBe(true);
  });

  it("gives up with false after maxWaitMs", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    const started = performance.now();
    await expect(slots.acquire("a:443", 50)).resolves.toBe(false);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(40);
    expect(waited).toBeLessThan(1000);
  });

  it("a timed-out waiter leaks no slot", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    await expect(slots.acquire("a:443", 10)).resolves.toBe(false);
    slots.release("a:443");
    await expect(slots.acquire("a:443", 0)).resolves.toBe(true);
    await expect(slots.acquire("a:443", 0)).resolves.toBe(false);
  });

  it("a release hands the slot to a waiting acquire", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    const waiting = slots.acquire("a:443", 5000);
    setTimeout(() => slots.release("a:443"), 10);
    await expect(waiting).resolves.toBe(true);
  });

  it("a release of one host does not free another's slot", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    await slots.acquire("b:443", 1000);
    slots.release("b:443");
    await expect(slots.acquire("a:443", 20)).resolves.toBe(false);
    await expect(slots.acquire("b:443", 0)).resolves.toBe(true);
  });

  it("releasing an unknown host is harmless", () => {
    expect(() => new HostSlots(1).release("never:1")).not.toThrow();
  });

  it("stops waiting when the caller's signal aborts", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    const ac = new AbortController();
    const p = slots.acquire("a:443", 60_000, ac.signal);
    setTimeout(() => ac.abort(), 10);
    const started = performance.now();
    await expect(p).resolves.toBe(false);
    expect(performance.now() - started).toBeLessThan(5000);
    slots.release("a:443");
    await expect(slots.acquire("a:443", 0)).resolves.toBe(true);
  });

  it("a negative wait is treated as no wait", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    await expect(slots.acquire("a:443", -5)).resolves.toBe(false);
  });
});

describe("HostSlots: busy is not dead", () => {
  it("keeps waiting past stallMs while the host keeps finishing work", async () => {
    const slots = new HostSlots(1);
    const hold = () => new Promise((r) => setTimeout(r, 30));
    expect(await slots.acquire("busy:80", 50)).toBe(true);
    // Three deliveries queue ahead of ours, each holding the only slot 30 ms (< stallMs): ours gets
    // its turn after ~120 ms, more than twice the stall limit, because the host never stalls.
    const ahead = [1, 2, 3].map(async () => {
      expect(await slots.acquire("busy:80", 1000)).toBe(true);
      await hold();
      slots.release("busy:80");
    });
    const ours = slots.acquire("busy:80", 50);
    await hold();
    slots.release("busy:80");
    await Promise.all(ahead);
    expect(await ours).toBe(true);
  });

  it("gives up once the host has finished nothing for stallMs", async () => {
    const slots = new HostSlots(1);
    expect(await slots.acquire("dead:80", 50)).toBe(true);
    const started = Date.now();
    expect(await slots.acquire("dead:80", 50)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(await slots.acquire("other:80", 50)).toBe(true);
  });
});

describe("HostSlots: a stalled host", () => {
  it("hands later deliveries over at once while it stays stalled, and waits again once it moves", async () => {
    const slots = new HostSlots(1);
    expect(await slots.acquire("dead:80", 40)).toBe(true);
    expect(await slots.acquire("dead:80", 40)).toBe(false); // waited the stall out
    const started = Date.now();
    expect(await slots.acquire("dead:80", 40)).toBe(false);
    expect(Date.now() - started).toBeLessThan(20);
    slots.release("dead:80"); // it finished something: healthy again
    expect(await slots.acquire("dead:80", 40)).toBe(true);
  });
});

describe("HostSlots: an idle host is not a stalled one", () => {
  it("lets a burst after a long idle period wait for the host instead of handing it over", async () => {
    let clock = 0;
    const slots = new HostSlots(1, () => clock);
    expect(await slots.acquire("idle:80", 50)).toBe(true);
    slots.release("idle:80");
    clock = 3_600_000; // an hour without traffic
    expect(await slots.acquire("idle:80", 50)).toBe(true); // fills the host: progress counts from now
    const waiting = slots.acquire("idle:80", 50);
    slots.release("idle:80");
    expect(await waiting).toBe(true);
  });
});
