import type { RateLimit } from "../domain/models.js";

/**
 * Rate limits of subscriptions and configs, as GCRA (the leaky bucket as a meter): a limit of N a
 * second with burst M lets an attempt go when it is at most (M - 1) intervals ahead of the
 * theoretical arrival time, and moves that time one interval (1000 / N ms) on. Pure: time comes
 * in as an argument, so the rules are tested without clocks.
 *
 * A delivery over its limit is given its own slot: a reservation, so waiters go one by one at the
 * limit's pace, each woken once, in the order they asked. A slot far ahead is still reserved: the
 * delivery waits for it in Kafka (the retry record says its due time is a reserved slot, see
 * pipeline/delivery-stage.ts). A slot whose delivery never comes (a crash) stays unused: a limit
 * can be undershot, never exceeded by this replica.
 *
 * A slot says when to come back, not that the attempt then happens on time: a delivery may reach
 * its attempt late (a busy host, a busy process) and bunch up with the next one. So the attempt
 * itself is metered too, at the moment it is sent (`admit`), by the same rule over what was really
 * sent: that is what holds the limit; the slots only keep waiters in order and asleep.
 *
 * A delivery under several limits (its subscription's and its config's, shared by the config's
 * subscriptions) goes when all allow it, and is counted in each.
 */
interface Bucket {
  intervalMs: number;
  toleranceMs: number;
  /** Theoretical arrival time of the next conforming slot handed out. */
  slots: number;
  /** The same over attempts really sent. */
  sent: number;
}

type Meter = "slots" | "sent";

export class RateLimiter {
  // Keyed by the limit object itself: a config's limit object is shared by its subscriptions,
  // and configurations are loaded once, so the buckets live as long as the limits do.
  private readonly buckets = new WeakMap<RateLimit, Bucket>();

  /** Takes one attempt's slot under `limits` (nulls are no limit): when it may go, `now` or later. */
  take(limits: readonly (RateLimit | null)[], now: number): number {
    return this.meter("slots", limits, now, true);
  }

  /**
   * At the moment of sending: `now` if the attempt keeps every limit, and it is counted; else the
   * earliest time it would, and nothing is counted.
   */
  admit(limits: readonly (RateLimit | null)[], now: number): number {
    const at = this.meter("sent", limits, now, false);
    return at > now ? at : this.meter("sent", limits, now, true);
  }

  private meter(meter: Meter, limits: readonly (RateLimit | null)[], now: number, count: boolean): number {
    let at = now;
    const buckets: Bucket[] = [];
    for (const limit of limits) {
      if (limit === null) continue;
      const bucket = this.bucketOf(limit, now);
      buckets.push(bucket);
      at = Math.max(at, bucket[meter] - bucket.toleranceMs);
    }
    if (count) for (const bucket of buckets) bucket[meter] = Math.max(bucket[meter], at) + bucket.intervalMs;
    return at;
  }

  private bucketOf(limit: RateLimit, now: number): Bucket {
    let bucket = this.buckets.get(limit);
    if (!bucket) {
      const intervalMs = 1000 / limit.per_second;
      bucket = { intervalMs, toleranceMs: (limit.burst - 1) * intervalMs, slots: now, sent: now };
      this.buckets.set(limit, bucket);
    }
    // An idle bucket is full again, not owed a burst from the past.
    if (bucket.slots < now) bucket.slots = now;
    if (bucket.sent < now) bucket.sent = now;
    return bucket;
  }
}
