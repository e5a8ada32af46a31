/**
 * Per partition: which records are still in progress, and so which offset may be committed. The
 * committed offset is the lowest one not yet done, so a crash replays from there (at least once),
 * while records finish in any order. Offsets arrive in increasing order within a partition.
 */
export class PartitionProgress {
  // Offsets started, in arrival order; a done offset is dropped once everything before it is done.
  private readonly started: bigint[] = [];
  private readonly done = new Set<bigint>();
  private next: bigint | undefined;

  begin(offset: string): void {
    const o = BigInt(offset);
    this.started.push(o);
    if (this.next === undefined) this.next = o;
  }

  complete(offset: string): void {
    this.done.add(BigInt(offset));
    while (this.started.length > 0 && this.done.has(this.started[0] as bigint)) {
      const head = this.started.shift() as bigint;
      this.done.delete(head);
      this.next = head + 1n;
    }
    if (this.started.length > 0) this.next = this.started[0];
  }

  /** The offset to commit (the next record to read after a restart), or undefined if none yet. */
  committable(): string | undefined {
    return this.next?.toString();
  }

  get pending(): number {
    return this.started.length;
  }
}

/**
 * Progress of every partition this consumer owns, and what changed since the last commit. A
 * rebalance starts a new generation: kafkajs re-reads every owned partition from its committed
 * offset, so progress begun before it is dropped, and completions of that older work land on
 * progress objects that no longer count.
 */
export class OffsetTracker {
  private partitions = new Map<string, { topic: string; partition: number; progress: PartitionProgress }>();
  private readonly committed = new Map<string, string>();

  /** Records `offset` as started; complete it on the returned progress. */
  begin(topic: string, partition: number, offset: string): PartitionProgress {
    const key = `${topic}\u0000${partition}`;
    let entry = this.partitions.get(key);
    if (!entry) this.partitions.set(key, (entry = { topic, partition, progress: new PartitionProgress() }));
    entry.progress.begin(offset);
    return entry.progress;
  }

  /** Offsets that moved since the last `markCommitted`, in kafkajs' commitOffsets shape. */
  uncommitted(): { topic: string; partition: number; offset: string }[] {
    const out: { topic: string; partition: number; offset: string }[] = [];
    for (const [key, { topic, partition, progress }] of this.partitions) {
      const offset = progress.committable();
      if (offset !== undefined && this.committed.get(key) !== offset) out.push({ topic, partition, offset });
    }
    return out;
  }

  markCommitted(offsets: { topic: string; partition: number; offset: string }[]): void {
    for (const o of offsets) this.committed.set(`${o.topic}\u0000${o.partition}`, o.offset);
  }

  newGeneration(): void {
    this.partitions = new Map();
    this.committed.clear();
  }

  get pending(): number {
    let n = 0;
    for (const { progress } of this.partitions.values()) n += progress.pending;
    return n;
  }
}
