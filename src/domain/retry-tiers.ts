/*
 * Delay tiers: where a delivery waits, by how long it has to wait. A wait shorter than the first
 * tier goes to the retry topic, whose consumer keeps it in memory (parked, no slot) until it is
 * due. A longer wait goes to the tier topic "<retry topic>.<tier>" of the longest tier that fits
 * in it; that topic's consumer starts a record one tier's delay after it was written, and then
 * either delivers it (if due within the first tier) or writes it to the tier that fits what is
 * left. Every record of a tier waits the same time, so a tier is first-in-first-due: its consumer
 * only ever holds the head of each partition (the partition pauses behind it), and memory stays
 * bounded whatever the schedules and however many deliveries wait. A wait of 6 h with a 1 h tier
 * costs six writes and no memory. Pure: naming and arithmetic only.
 */

export class RetryTiers {
  /** Ascending, without duplicates. */
  readonly tiers: readonly { topic: string; delayMs: number }[];
  private readonly byTopic: Map<string, number>;

  constructor(
    readonly retryTopic: string,
    tiersMs: readonly number[],
  ) {
    this.tiers = [...new Set(tiersMs)].sort((a, b) => a - b).map((delayMs) => ({ topic: tierTopicName(retryTopic, delayMs), delayMs }));
    this.byTopic = new Map(this.tiers.map((t) => [t.topic, t.delayMs]));
  }

  /**
   * The longest wait that stays in memory: shorter than the first tier (no tiers: every wait, as
   * in a sidecar configured with `retry.tiers: []`).
   */
  get inMemoryLimitMs(): number {
    return this.tiers[0]?.delayMs ?? Number.POSITIVE_INFINITY;
  }

  /** Every topic a retry may be written to: the retry topic and the tiers. */
  topics(): string[] {
    return [this.retryTopic, ...this.tiers.map((t) => t.topic)];
  }

  /** Where a delivery due in `waitMs` waits. */
  topicFor(waitMs: number): string {
    let topic = this.retryTopic;
    for (const tier of this.tiers) if (tier.delayMs <= waitMs) topic = tier.topic;
    return topic;
  }

  /** A tier topic's delay; undefined for the retry topic and any other. */
  delayOf(topic: string): number | undefined {
    return this.byTopic.get(topic);
  }

  /**
   * When a record read from `topic` should be looked at again: its due time, or for a tier one
   * tier's delay after it was written, whichever comes first.
   */
  startAt(topic: string, writtenAt: number, dueAt: number): number {
    const delay = this.delayOf(topic);
    return delay === undefined ? dueAt : Math.min(dueAt, writtenAt + delay);
  }
}

/** "10s", "1m", "90s", "2h", "1500ms": the shortest exact spelling, so names are stable and legible. */
export function tierLabel(delayMs: number): string {
  if (delayMs % 3_600_000 === 0) return `${delayMs / 3_600_000}h`;
  if (delayMs % 60_000 === 0) return `${delayMs / 60_000}m`;
  if (delayMs % 1000 === 0) return `${delayMs / 1000}s`;
  return `${delayMs}ms`;
}

export function tierTopicName(retryTopic: string, delayMs: number): string {
  return `${retryTopic}.${tierLabel(delayMs)}`;
}
