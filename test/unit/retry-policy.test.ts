import { describe, expect, it, vi } from "vitest";
import { backoffDelayMs, isRetryableStatus, MAX_BACKOFF_MS, parseRetryAfterMs, verdictOf } from "../../src/delivery/retry-policy.js";
import type { AttemptOutcome } from "../../src/domain/outcomes.js";
import { prng as seeded } from "../support/prng.js";

const response = (status: number): AttemptOutcome => ({ kind: "response", status });

describe("verdictOf", () => {
  it.each([200, 201, 202, 204, 250, 299])("%i is delivered", (status) => {
    expect(verdictOf(response(status))).toBe("delivered");
  });

  it.each([408, 429, 500, 502, 503, 504, 599, 600, 999])("%i is retryable", (status) => {
    expect(verdictOf(response(status))).toBe("retryable");
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([100, 101, 199, 300, 301, 302, 304, 307, 308, 399, 400, 401, 403, 404, 405, 407, 409, 410, 413, 422, 428, 430, 451, 499])(
    "%i is final",
    (status) => {
      expect(verdictOf(response(status))).toBe("final");
      expect(isRetryableStatus(status)).toBe(false);
    },
  );

  it("ignores Retry-After when judging a status", () => {
    expect(verdictOf({ kind: "response", status: 404, retryAfterMs: 1000 })).toBe("final");
    expect(verdictOf({ kind: "response", status: 200, retryAfterMs: 1000 })).toBe("delivered");
    expect(verdictOf({ kind: "response", status: 503, retryAfterMs: 1000 })).toBe("retryable");
  });

  it.each(["timeout", "transport_error", "circuit_open"] as const)("an error (%s) is retryable", (category) => {
    expect(verdictOf({ kind: "error", category, message: "boom" })).toBe("retryable");
  });

  it("a rejected target is final", () => {
    expect(verdictOf({ kind: "rejected", reason: "ssrf_blocked", message: "address not allowed" })).toBe("final");
  });
});

describe("backoffDelayMs", () => {
  it("caps at five minutes", () => {
    expect(MAX_BACKOFF_MS).toBe(300_000);
  });

  it("follows min(backoff * 2^(n-1), 5 min) with pyfly's default backoff of 5000 ms", () => {
    const schedule = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelayMs(5000, n));
    expect(schedule).toEqual([5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it("uses other backoffs the same way", () => {
    expect([1, 2, 3].map((n) => backoffDelayMs(100, n))).toEqual([100, 200, 400]);
    expect(backoffDelayMs(0, 1)).toBe(0);
    expect(backoffDelayMs(0, 100)).toBe(0);
  });

  it("never exceeds the cap, even for a huge backoff or attempt number", () => {
    expect(backoffDelayMs(1_000_000, 1)).toBe(300_000);
    expect(backoffDelayMs(5000, 100)).toBe(300_000);
    expect(backoffDelayMs(300_001, 1)).toBe(300_000);
    expect(backoffDelayMs(150_000, 2)).toBe(300_000);
    expect(backoffDelayMs(150_001, 2)).toBe(300_000);
  });

  it("treats attempt 0 like attempt 1 (no shorter-than-backoff wait)", () => {
    expect(backoffDelayMs(5000, 0)).toBe(5000);
  });

  it("without jitter ignores the random source", () => {
    let calls = 0;
    const random = () => {
      calls += 1;
      return 0.9;
    };
    expect(backoffDelayMs(5000, 2, { random })).toBe(10_000);
    expect(backoffDelayMs(5000, 2, { jitter: 0, random })).toBe(10_000);
    expect(calls).toBe(0);
  });

  it("jitter scales the wait by (1 - jitter * random)", () => {
    expect(backoffDelayMs(5000, 2, { jitter: 0.5, random: () => 0 })).toBe(10_000);
    expect(backoffDelayMs(5000, 2, { jitter: 0.5, random: () => 0.5 })).toBe(7500);
    expect(backoffDelayMs(5000, 2, { jitter: 0.2, random: () => 0.5 })).toBe(9000);
    expect(backoffDelayMs(5000, 2, { jitter: 1, random: () => 0.25 })).toBe(7500);
  });

  it("jitter only ever shortens the wait, within [exp * (1 - jitter), exp], cap included", () => {
    const random = seeded(42);
    const seen = new Set<number>();
    for (const jitter of [0.1, 0.5, 1]) {
      for (let attempt = 1; attempt <= 10; attempt++) {
        const exp = Math.min(5000 * 2 ** (attempt - 1), 300_000);
        for (let i = 0; i < 50; i++) {
          const d = backoffDelayMs(5000, attempt, { jitter, random });
          expect(d).toBeLessThanOrEqual(exp);
          expect(d).toBeGreaterThanOrEqual(Math.floor(exp * (1 - jitter)));
          seen.add(d);
        }
      }
    }
    // It actually varies (a jitter that is silently ignored would fail this).
    expect(seen.size).toBeGreaterThan(100);
  });

  it("Retry-After is a floor above the computed wait", () => {
    expect(backoffDelayMs(5000, 1, { retryAfterMs: 60_000 })).toBe(60_000);
    expect(backoffDelayMs(5000, 3, { retryAfterMs: 20_001 })).toBe(20_001);
  });

  it("Retry-After below the computed wait does not shorten it", () => {
    expect(backoffDelayMs(5000, 3, { retryAfterMs: 1000 })).toBe(20_000);
    expect(backoffDelayMs(5000, 3, { retryAfterMs: 0 })).toBe(20_000);
  });

  it("Retry-After is capped at five minutes", () => {
    expect(backoffDelayMs(5000, 1, { retryAfterMs: 3_600_000 })).toBe(300_000);
    expect(backoffDelayMs(5000, 10, { retryAfterMs: 3_600_000 })).toBe(300_000);
  });

  it("Retry-After is a floor under a jittered wait too", () => {
    expect(backoffDelayMs(5000, 2, { jitter: 1, random: () => 0.99, retryAfterMs: 4000 })).toBe(4000);
    expect(backoffDelayMs(5000, 2, { jitter: 1, random: () => 0.5, retryAfterMs: 1000 })).toBe(5000);
  });

  it("returns whole milliseconds", () => {
    const d = backoffDelayMs(333, 1, { jitter: 0.3, random: () => 0.123 });
    expect(Number.isInteger(d)).toBe(true);
    expect(d).toBe(Math.round(333 * (1 - 0.3 * 0.123)));
  });
});

describe("parseRetryAfterMs", () => {
  const now = Date.parse("2024-01-01T00:00:00Z");

  it("is undefined when absent", () => {
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
  });

  it("reads delay-seconds", () => {
    expect(parseRetryAfterMs("0", now)).toBe(0);
    expect(parseRetryAfterMs("1", now)).toBe(1000);
    expect(parseRetryAfterMs("120", now)).toBe(120_000);
    expect(parseRetryAfterMs(" 30 ", now)).toBe(30_000);
    expect(parseRetryAfterMs("86400", now)).toBe(86_400_000);
  });

  it("reads an HTTP date as the time left until it", () => {
    expect(parseRetryAfterMs("Mon, 01 Jan 2024 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfterMs("Mon, 01 Jan 2024 01:00:00 GMT", now)).toBe(3_600_000);
  });

  it("a date in the past (or now) means no wait, never a negative one", () => {
    expect(parseRetryAfterMs("Sun, 31 Dec 2023 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfterMs("Mon, 01 Jan 2024 00:00:00 GMT", now)).toBe(0);
  });

  it("uses the clock when no `now` is given", () => {
    vi.useFakeTimers({ now: Date.parse("2024-01-01T12:00:00Z"), toFake: ["Date"] });
    try {
      expect(parseRetryAfterMs("Mon, 01 Jan 2024 12:01:00 GMT")).toBe(60_000);
      vi.setSystemTime(Date.parse("2024-01-01T12:00:45Z"));
      expect(parseRetryAfterMs("Mon, 01 Jan 2024 12:01:00 GMT")).toBe(15_000);
    } finally {
      vi.useRealTimers();
    }
  });

  it.each(["", "   ", "soon", "abc", "later please", "NaN"])("garbage %j is undefined", (value) => {
    expect(parseRetryAfterMs(value, now)).toBeUndefined();
  });
});
