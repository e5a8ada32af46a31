import { SidecarError } from "../shared/errors.js";
/**
 * Caps each target host's share of in-flight deliveries, so one slow host cannot take them all.
 * A delivery waits for a slot as long as the host keeps finishing work (busy but healthy); once the
 * host has finished nothing for `stallMs`, the wait gives up (slow or dead) and the caller hands
 * the delivery over instead of queueing behind it; while it stays stalled, later deliveries are
 * handed over without waiting. A stall is only ever judged by the host's timer, after the event
 * loop has read what the host answered: a process busy for a while (a burst of records starting)
 * must not take its own unread answers for a silent host.
 *
 * Waiting is on the hot path of a busy host, so a waiter costs one queue entry: one stall timer per
 * host (not per waiter), and one abort listener per signal (signals live as long as a partition's
 * assignment), never a timer, controller or listener per delivery.
 */
export class HostSlots {
  private readonly hosts = new Map<string, Host>();
  private readonly watched = new WeakSet<AbortSignal>();

  constructor(
    private readonly perHost: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A slot now, if the host has one free. */
  tryAcquire(host: string): boolean {
    let entry = this.hosts.get(host);
    if (!entry) this.hosts.set(host, (entry = { used: 0, progressAt: this.now(), stalled: false, waiters: [], timer: undefined }));
    if (entry.used >= this.perHost) return false;
    entry.used += 1;
    // Stall is measured from the last release, or from the moment the host filled up.
    if (entry.used === this.perHost) entry.progressAt = this.now();
    return true;
  }

  /** A slot now, or once one frees while the host keeps making progress; false if it stalls. */
  acquire(host: string, stallMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.tryAcquire(host)) return Promise.resolve(true);
    return this.wait(host, stallMs, signal) || Promise.resolve(false);
  }

  /**
   * After a failed tryAcquire: false at once when the host is known to be stalled (or `signal`
   * aborted), so later deliveries don't wait the stall out again; else the wait for a slot.
   */
  wait(host: string, stallMs: number, signal?: AbortSignal): Promise<boolean> | false {
    const entry = this.hosts.get(host);
    if (!entry || signal?.aborted || (entry.stalled && this.now() - entry.progressAt >= stallMs)) return false;
    const current = entry;
    return new Promise((resolve) => {
      current.waiters.push({ resolve, stallMs, signal });
      if (signal) this.watch(signal);
      this.arm(current);
    });
  }

  release(host: string): void {
    const entry = this.hosts.get(host);
    if (!entry) return;
    if (entry.used === 0) throw new SidecarError("INTERNAL_INVARIANT", `HostSlots released more often than acquired for ${host}`);
    entry.progressAt = this.now();
    entry.stalled = false;
    const next = entry.waiters.shift();
    // The slot passes straight to the next waiter; `used` stays the same.
    if (next) next.resolve(true);
    else entry.used -= 1;
  }

  /** One timer per host, due when the first waiter's patience ends. */
  private arm(entry: Host): void {
    if (entry.timer !== undefined || entry.waiters.length === 0) return;
    let due = Number.POSITIVE_INFINITY;
    for (const w of entry.waiters) due = Math.min(due, entry.progressAt + w.stallMs);
    if (due === Number.POSITIVE_INFINITY) return;
    entry.timer = setTimeout(
      // Decided after the loop's pending I/O: a process that was busy for the whole budget (a
      // burst of records starting) has the host's answers queued, and those are progress, not a
      // stall. Timers run before I/O callbacks; an immediate runs after them.
      () =>
        setImmediate(() => {
          entry.timer = undefined;
          const now = this.now();
          entry.waiters = entry.waiters.filter((w) => {
            if (now - entry.progressAt < w.stallMs) return true;
            entry.stalled = true;
            w.resolve(false);
            return false;
          });
          this.arm(entry);
        }),
      Math.min(Math.max(1, due - this.now()), 2 ** 31 - 1),
    );
  }

  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener(
      "abort",
      () => {
        for (const entry of this.hosts.values()) {
          entry.waiters = entry.waiters.filter((w) => {
            if (w.signal !== signal) return true;
            w.resolve(false);
            return false;
          });
        }
      },
      { once: true },
    );
  }
}

interface Waiter {
  resolve: (acquired: boolean) => void;
  stallMs: number;
  signal: AbortSignal | undefined;
}

interface Host {
  used: number;
  /** The last release, or the moment the host's slots filled up, whichever is later. */
  progressAt: number;
  /** Judged stalled by its timer, and nothing finished since. */
  stalled: boolean;
  waiters: Waiter[];
  timer: NodeJS.Timeout | undefined;
}
