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
    this.used -= 1;
    const next = this.waiters.shift();
    if (next) next();
  }
}

/** Caps each target host's share of in-flight deliveries, so one slow host cannot take them all. */
export class HostSlots {
  private readonly used = new Map<string, number>();

  constructor(private readonly perHost: number) {}

  tryAcquire(host: string): boolean {
    const n = this.used.get(host) ?? 0;
    if (n >= this.perHost) return false;
    this.used.set(host, n + 1);
    return true;
  }

  release(host: string): void {
    const n = (this.used.get(host) ?? 1) - 1;
    if (n <= 0) this.used.delete(host);
    else this.used.set(host, n);
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
