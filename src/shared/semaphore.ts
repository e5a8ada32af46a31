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
