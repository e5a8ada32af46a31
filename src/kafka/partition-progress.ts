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
