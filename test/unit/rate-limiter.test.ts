import { describe, expect, it } from "vitest";
import type { RateLimit } from "../../src/domain/models.js";
import { RateLimiter } from "../../src/delivery/rate-limiter.js";

/** Asks `n` times at `now`, as n deliveries arriving together; returns the slot each got. */
function slots(limiter: RateLimiter, limits: (RateLimit | null)[], n: number, now: number): number[] {
  return Array.from({ length: n }, () => limiter.take(limits, now));
}

describe("RateLimiter (GCRA)", () => {
  it("no limit: every attempt goes now", () => {
    expect(slots(new RateLimiter(), [null, null], 3, 7)).toEqual([7, 7, 7]);
  });

  it("burst 1 spaces slots evenly: 20/s is one every 50 ms, handed out in turn", () => {
    expect(slots(new RateLimiter(), [{ per_second: 20, burst: 1 }], 5, 1_000)).toEqual([1_000, 1_050, 1_100, 1_150, 1_200]);
  });

  it("a burst of M goes at once, then the rate", () => {
    expect(slots(new RateLimiter(), [{ per_second: 10, burst: 3 }], 5, 0)).toEqual([0, 0, 0, 100, 200]);
  });

  it("an idle limit is full again, not owed a burst from the past", () => {
    const limit = { per_second: 1, burst: 2 };
    const limiter = new RateLimiter();
    expect(slots(limiter, [limit], 3, 0)).toEqual([0, 0, 1_000]);
    expect(slots(limiter, [limit], 3, 60_000)).toEqual([60_000, 60_000, 61_000]);
  });

  it("under two limits, a slot is where both allow it, and is taken in both", () => {
    const shared = { per_second: 10, burst: 1 };
    const own = { per_second: 5, burst: 1 };
    const limiter = new RateLimiter();
    expect(slots(limiter, [own, shared], 3, 0)).toEqual([0, 200, 400]);
    // The shared limit has slots taken up to 400; another subscription under it comes after them.
    expect(slots(limiter, [null, shared], 1, 0)).toEqual([500]);
  });

  it("slots far ahead are still handed out in order, so waiters queue instead of all coming back at once", () => {
    expect(slots(new RateLimiter(), [{ per_second: 1, burst: 1 }], 4, 0)).toEqual([0, 1_000, 2_000, 3_000]);
  });

  it("admit meters what is sent: attempts late for their slots do not bunch up, and a refused one is not counted", () => {
    const limit = { per_second: 10, burst: 1 };
    const limiter = new RateLimiter();
    expect(slots(limiter, [limit], 3, 0)).toEqual([0, 100, 200]);
    // The first two reach their attempt late, at 180 and 190 ms (a busy host).
    expect(limiter.admit([limit], 180)).toBe(180);
    expect(limiter.admit([limit], 190)).toBe(280);
    expect(limiter.admit([limit], 280)).toBe(280);
    expect(limiter.admit([limit], 290)).toBe(380);
  });

  it("never more sent than per-second + burst - 1 in any 1 s window, whatever the arrivals", () => {
    const limit = { per_second: 20, burst: 2 };
    const limiter = new RateLimiter();
    const sent: number[] = [];
    // Deliveries arriving in bursts at odd times, each sent when admit allows it.
    for (let now = 0; now < 5_000; now += 13) {
      for (let i = 0; i < now % 3; i++) {
        let at = limiter.take([limit], now);
        for (let ready = limiter.admit([limit], at); ready !== at; ready = limiter.admit([limit], at)) at = ready;
        sent.push(at);
      }
    }
    sent.sort((a, b) => a - b);
    for (const start of sent) expect(sent.filter((t) => t >= start && t < start + 1_000).length).toBeLessThanOrEqual(21);
  });
});
