import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HostSlots } from "../../src/delivery/host-slots.js";

// Fake timers and Date: every wait below is the stall timer's (or the test's own) and runs on the
// fake clock, so the tests say when a promise settles, not how long it took. A stall is judged in
// an immediate after the host's timer, which the fake clock runs 1 ms after the timer: a waiter
// with stallMs S is still waiting at S - 1 and has its answer at S + 1.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** What `promise` settled with once `ms` of fake time passed (pending work runs first), or "pending". */
async function after<T>(ms: number, promise: Promise<T>): Promise<T | "pending"> {
  let outcome: T | "pending" = "pending";
  void promise.then((value) => (outcome = value));
  await vi.advanceTimersByTimeAsync(ms);
  return outcome;
}

describe("HostSlots", () => {
  it("caps each host at perHost slots", async () => {
    const slots = new HostSlots(2);
    expect(await after(0, slots.acquire("a:443", 1000))).toBe(true);
    expect(await after(0, slots.acquire("a:443", 1000))).toBe(true);
    const third = slots.acquire("a:443", 20);
    expect(await after(19, third)).toBe("pending");
    expect(await after(2, third)).toBe(false);
  });

  it("does not let one host's use affect another", async () => {
    const slots = new HostSlots(1);
    expect(await after(0, slots.acquire("a:443", 1000))).toBe(true);
    expect(await after(0, slots.acquire("b:443", 0))).toBe(true);
    expect(await after(0, slots.acquire("a:80", 0))).toBe(true);
  });

  it("gives up with false after maxWaitMs", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    const waiting = slots.acquire("a:443", 50);
    expect(await after(49, waiting)).toBe("pending");
    expect(await after(2, waiting)).toBe(false);
  });

  it("a timed-out waiter leaks no slot", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    expect(await after(11, slots.acquire("a:443", 10))).toBe(false);
    slots.release("a:443");
    expect(await after(0, slots.acquire("a:443", 0))).toBe(true);
    expect(await after(2, slots.acquire("a:443", 0))).toBe(false);
  });

  it("a release hands the slot to a waiting acquire", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    const waiting = slots.acquire("a:443", 5000);
    expect(await after(10, waiting)).toBe("pending");
    slots.release("a:443");
    expect(await after(0, waiting)).toBe(true);
  });

  it("a release of one host does not free another's slot", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    await slots.acquire("b:443", 1000);
    slots.release("b:443");
    expect(await after(21, slots.acquire("a:443", 20))).toBe(false);
    expect(await after(0, slots.acquire("b:443", 0))).toBe(true);
  });

  it("releasing an unknown host is harmless", () => {
    expect(() => new HostSlots(1).release("never:1")).not.toThrow();
  });

  it("stops waiting when the caller's signal aborts", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    const ac = new AbortController();
    const waiting = slots.acquire("a:443", 60_000, ac.signal);
    expect(await after(10, waiting)).toBe("pending");
    ac.abort();
    // At once, not when the 60 s stall budget ends.
    expect(await after(0, waiting)).toBe(false);
    slots.release("a:443");
    expect(await after(0, slots.acquire("a:443", 0))).toBe(true);
  });

  it("a negative wait is treated as no wait", async () => {
    const slots = new HostSlots(1);
    await slots.acquire("a:443", 1000);
    // Judged on the host's first timer (never set below 1 ms), as a wait of 0 is.
    expect(await after(2, slots.acquire("a:443", -5))).toBe(false);
  });
});

describe("HostSlots: busy is not dead", () => {
  it("keeps waiting past stallMs while the host keeps finishing work", async () => {
    const slots = new HostSlots(1);
    const hold = () => new Promise((r) => setTimeout(r, 30));
    expect(await slots.acquire("busy:80", 50)).toBe(true);
    // Three deliveries queue ahead of ours, each holding the only slot 30 ms (< stallMs): ours gets
    // its turn after 120 ms, more than twice the stall limit, because the host never stalls.
    const ahead = [1, 2, 3].map(async () => {
      expect(await slots.acquire("busy:80", 1000)).toBe(true);
      await hold();
      slots.release("busy:80");
    });
    const ours = slots.acquire("busy:80", 50);
    void hold().then(() => slots.release("busy:80"));
    expect(await after(119, ours)).toBe("pending");
    expect(await after(1, ours)).toBe(true);
    await Promise.all(ahead);
  });

  it("gives up once the host has finished nothing for stallMs", async () => {
    const slots = new HostSlots(1);
    expect(await slots.acquire("dead:80", 50)).toBe(true);
    const waiting = slots.acquire("dead:80", 50);
    expect(await after(49, waiting)).toBe("pending");
    expect(await after(2, waiting)).toBe(false);
    expect(await after(0, slots.acquire("other:80", 50))).toBe(true);
  });
});

describe("HostSlots: a stalled host", () => {
  it("hands later deliveries over at once while it stays stalled, and waits again once it moves", async () => {
    const slots = new HostSlots(1);
    expect(await slots.acquire("dead:80", 40)).toBe(true);
    expect(await after(41, slots.acquire("dead:80", 40))).toBe(false); // waited the stall out
    expect(await after(0, slots.acquire("dead:80", 40))).toBe(false); // at once
    slots.release("dead:80"); // it finished something: healthy again
    expect(await after(0, slots.acquire("dead:80", 40))).toBe(true);
    const next = slots.acquire("dead:80", 40);
    expect(await after(39, next)).toBe("pending"); // waits again
    expect(await after(2, next)).toBe(false);
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

describe("HostSlots: a busy process is not a stalled host", () => {
  it("a waiter arriving after the budget passed unseen (the process was busy) queues: only the host's timer, after pending I/O, judges a stall", async () => {
    let clock = 0;
    const slots = new HostSlots(1, () => clock);
    expect(slots.tryAcquire("busy:80")).toBe(true);
    clock = 1_000; // the loop was busy for a second; the host's answer is queued, unread
    const waiting = slots.wait("busy:80", 200);
    expect(waiting).not.toBe(false);
    slots.release("busy:80"); // the answer is read
    expect(await waiting).toBe(true);
  });
});
