import { describe, expect, it } from "vitest";
import { HostSlots } from "../../src/delivery/host-slots.js";

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
