import { acquireWithin, Semaphore } from "../shared/semaphore.js";

/**
 * Caps each target host's share of in-flight deliveries, so one slow host cannot take them all.
 * A delivery waits for a slot as long as the host keeps finishing work (busy but healthy); once the
 * host has finished nothing for `stallMs`, the wait gives up (slow or dead) and the caller hands
 * the delivery over instead of queueing behind it; while it stays stalled, later deliveries are
 * handed over without waiting.
 */
export class HostSlots {
  // progressAt: the last release, or the moment the host's slots filled up, whichever is later.
  private readonly hosts = new Map<string, { slots: Semaphore; progressAt: number }>();

  constructor(
    private readonly perHost: number,
    private readonly now: () => number = Date.now,
  ) {}

  async acquire(host: string, stallMs: number, signal?: AbortSignal): Promise<boolean> {
    let entry = this.hosts.get(host);
    if (!entry) this.hosts.set(host, (entry = { slots: new Semaphore(this.perHost), progressAt: this.now() }));
    const current = entry;
    const acquired = () => {
      if (current.slots.full) current.progressAt = this.now();
      return true;
    };
    if (entry.slots.tryAcquire()) return acquired();
    // Known to be stalled already: don't make every delivery behind it wait the stall out again.
    if (this.now() - entry.progressAt >= stallMs) return false;
    for (;;) {
      if (await acquireWithin(entry.slots, stallMs, signal)) return acquired();
      if (signal?.aborted || this.now() - entry.progressAt >= stallMs) return false;
    }
  }

  release(host: string): void {
    const entry = this.hosts.get(host);
    if (!entry) return;
    entry.progressAt = this.now();
    entry.slots.release();
  }
}
