/**
 * Label values that come from outside (event types from producers) are kept to the first `limit`
 * distinct values; the rest share one value, so a stream of odd event types cannot blow up the
 * number of series Prometheus has to keep.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly limit: number,
    private readonly overflow = "other",
  ) {}

  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.limit) return this.overflow;
    this.seen.add(raw);
    return raw;
  }
}
