import type { RateLimit } from "../domain/models.js";

/**
 * Rate limits of subscriptions and configs, as GCRA (the leaky bucket as a meter): a limit of N a
 * second with burst M lets an attempt go when it is at most (M - 1) intervals ahead of the
 * theoretical arrival time, and moves that time one interval (1000 / N ms) on. Pure: time comes
 * in as an argument, so the rules are tested without clocks.
 *
 * A delivery over its limit is given a time to come back, and, when that time is within the
 * caller's horizon, a reservation: the slot is its own, so it goes without asking again and many
 * waiters wake one by one instead of all at once. Beyond the horizon nothing is reserved (the
 * delivery will wait in Kafka, where a reservation could outlive this process): it is told the
 * earliest time it could go, and asks again then.
 *
 * A delivery under several limits (its subscription's and its config's, shared by the config's
 * subscriptions) goes when all allow it, and its reservation is taken in each.
 */
export type RateDecision = { kind: "go" } | { kind: "wait"; at: number; reserved: boolean };

interface Bucket {
  intervalMs: number;
  toleranceMs: number;
  /** Theoretical arrival time of the next conforming attempt. */
  tat: number;
}

const GO: RateDecision = { kind: "go" };

export class RateLimiter {
  // Keyed by the limit object itself: a config's limit object is shared by its subscriptions,
  // and configurations are loaded once, so the buckets live as long as the limits do.
  private readonly buckets = new WeakMap<RateLimit, Bucket>();

  /** Asks to make one attempt now under `limits` (nulls are no limit). */
  take(limits: readonly (RateLimit | null)[], now: number, horizonMs: number): RateDecision {
    let at = now;
    const buckets: Bucket[] = [];
    for (const limit of limits) {
      if (limit === null) continue;
      const bucket = this.bucketOf(limit, now);
      buckets.push(bucket);
      at = Math.max(at, bucket.tat - bucket.toleranceMs);
    }
    if (buckets.length === 0) return GO;
    if (at - now > horizonMs) return { kind: "wait", at, reserved: false };
    for (const bucket of buckets) bucket.tat = Math.max(bucket.tat, at) + bucket.intervalMs;
    return at <= now ? GO : { kind: "wait", at, reserved: true };
  }

  private bucketOf(limit: RateLimit, now: number): Bucket {
    let bucket = this.buckets.get(limit);
    if (!bucket) {
      const intervalMs = 1000 / limit.per_second;
      bucket = { intervalMs, toleranceMs: (limit.burst - 1) * intervalMs, tat: now };
      this.buckets.set(limit, bucket);
    }
    // An idle bucket is full again, not owed a burst from the past.
    if (bucket.tat < now) bucket.tat = now;
    return bucket;
  }
}
