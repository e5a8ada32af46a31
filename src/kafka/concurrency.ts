/** A counting semaphore whose waiters can be abandoned (shutdown) without leaking slots. */
export class Semaphore {
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  get full(): boolean {
    return this.used >= this.capacity;
  }

  tryAcquire(): boolean {
    if (this.used >= this.capacity) return false;
    this.used += 1;
    return true;
  }

  /** Resolves true with a slot, or false if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (this.tryAcquire()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const grant = () => {
        signal?.removeEventListener("abort", abandon);
        this.used += 1;
        resolve(true);
      };
      const abandon = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      this.waiters.push(grant);
      signal?.addEventListener("abort", abandon, { once: true });
    });
  }

  release(): void {
    if (this.used === 0) throw new Error("Semaphore released more often than acquired");
    this.used -= 1;
    const next = this.waiters.shift();
    if (next) next();
  }
}

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

/**
 * One wait for a slot, ended by `timeoutMs` or by `signal`. Built by hand rather than with
 * AbortSignal.any: the signal lives as long as the consumer and sees thousands of waits, and every
 * listener put on it is taken off again here.
 */
export async function acquireWithin(slots: Semaphore, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const wait = new AbortController();
  const stop = () => wait.abort();
  // setTimeout's ceiling (~24.8 days) stands in for "no limit".
  const timer = setTimeout(stop, Math.min(Math.max(1, timeoutMs), 2 ** 31 - 1));
  signal?.addEventListener("abort", stop, { once: true });
  try {
    return await slots.acquire(wait.signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", stop);
  }
}

/** Runs tasks with the same key one after another (ordering: key), other keys in parallel. */
export class KeyedSequencer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
