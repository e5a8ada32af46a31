import { describe, expect, it } from "vitest";
import type { RateLimit } from "../../src/domain/models.js";
import { RateLimiter } from "../../src/delivery/rate-limiter.js";

/** Asks `n` times at `now`, as n deliveries arriving together; returns when each may go. */
function times(limiter: RateLimiter, limits: (RateLimit | null)[], n: number, now: number, horizonMs = Infinity) {
  return Array.from({ length: n }, () => {
    const d = limiter.take(limits, now, horizonMs);
    return d.kind === "go" ? now : d.at;
  });
}

describe("RateLimiter (GCRA)", () => {
  it("no limit: every attempt goes", () => {
    expect(new RateLimiter().take([null, null], 0, 0)).toEqual({ kind: "go" });
  });

  it("burst 1 spaces attempts evenly: 20/s is one every 50 ms, reserved in turn", () => {
    const limit = { per_second: 20, burst: 1 };
    expect(times(new RateLimiter(), [limit], 5, 1_000)).toEqual([1_000, 1_050, 1_100, 1_150, 1_200]);
  });

  it("a burst of M goes at once, then the rate", () => {
    const limit = { per_second: 10, burst: 3 };
    expect(times(new RateLimiter(), [limit], 5, 0)).toEqual([0, 0, 0, 100, 200]);
  });

  it("never more than per-second + burst - 1 in any 1 s window, whatever the arrivals", () => {
    const limit = { per_second: 20, burst: 1 };
    const limiter = new RateLimiter();
    const sent: number[] = [];
    for (let now = 0; now < 5_000; now += 7) for (const at of times(limiter, [limit], 3, now, 0)) if (at === now) sent.push(at);
    for (const start of sent) expect(sent.filter((t) => t >= start && t < start + 1_000).length).toBeLessThanOrEqual(20);
    // And not far below it: polled every 7 ms, each attempt goes at most 7 ms after its slot.
    expect(sent.length).toBeGreaterThanOrEqual(Math.floor(5_000 / (50 + 7)));
  });

  it("an idle limit is full again, not owed a burst from the past", () => {
    const limit = { per_second: 1, burst: 2 };
    const limiter = new RateLimiter();
    expect(times(limiter, [limit], 3, 0)).toEqual([0, 0, 1_000]);
    expect(times(limiter, [limit], 3, 60_000)).toEqual([60_000, 60_000, 61_000]);
  });

  it("under two limits, an attempt goes when both allow, and is counted in both", () => {
    const shared = { per_second: 10, burst: 1 };
    const own = { per_second: 5, burst: 1 };
    const limiter = new RateLimiter();
    expect(times(limiter, [own, shared], 3, 0)).toEqual([0, 200, 400]);
    // The shared limit has three reserved; another subscription under it waits behind them.
    expect(times(limiter, [null, shared], 1, 0)).toEqual([400 + 100]);
  });

  it("beyond the horizon nothing is reserved: the answer is the earliest time, and the slot stays free", () => {
    const limit = { per_second: 1, burst: 1 };
    const limiter = new RateLimiter();
    expect(limiter.take([limit], 0, 500)).toEqual({ kind: "go" });
    expect(limiter.take([limit], 0, 500)).toEqual({ kind: "wait", at: 1_000, reserved: false });
    expect(limiter.take([limit], 0, 500)).toEqual({ kind: "wait", at: 1_000, reserved: false });
    expect(limiter.take([limit], 600, 500)).toEqual({ kind: "wait", at: 1_000, reserved: true });
    expect(limiter.take([limit], 600, 500)).toEqual({ kind: "wait", at: 2_000, reserved: false });
  });
});
