import CircuitBreaker from "opossum";
import { SidecarError } from "../shared/errors.js";
import type { BreakerState } from "../domain/outcomes.js";

/*
 * One circuit breaker per target host, with pyfly's meaning kept under concurrency.
 *
 * pyfly opens after `failureThreshold` consecutive transport failures of a sequential sender. With
 * many deliveries in flight to one host, one stall fails them all at once, and counted one by one
 * they would open a healthy host's breaker. So:
 *
 * - A transport failure counts only if its attempt started after the end of the last counted
 *   failure and after the last HTTP response. An attempt that overlapped the last counted failure
 *   is the same incident and adds nothing. Failures are seen in the order they end, so this is the
 *   earliest-end greedy count: the largest number of failed attempts since the last response of
 *   which no two overlapped in time. A sequential sender counts exactly as pyfly; N concurrent
 *   attempts that time out together count 1.
 * - Bound: overlapping failures neither add to nor take from the count, so a host that fails every
 *   attempt opens by the end of the `failureThreshold`-th failure of any chain of attempts each
 *   started after the previous one ended (a refusing host: its retries and next deliveries).
 * - Any HTTP response, whatever its status, resets the count: the host answered.
 * - A neutral outcome (the sender refused the request itself: SSRF policy, a request that cannot
 *   be built) says nothing about the host: it neither counts nor resets, in any state.
 * - After `recoveryTimeoutMs` open, exactly one half-open probe goes through and the rest are
 *   refused until it settles: a response closes, a transport failure reopens for another timeout,
 *   a neutral probe frees the slot for the next caller and stays half-open.
 *
 * opossum 9 keeps the state (closed, open, half-open), the recovery timer and the transition
 * events; this registry decides the transitions with open() and close() and never fires through
 * opossum. opossum cannot express neutral: an errorFilter-ed error emits "success", which closes a
 * half-open breaker, and once its single probe slot is taken no public call gives it back. So the
 * registry admits the probe itself.
 *
 * Time is the order of events on the event loop (a counter), not a clock: "started after the end"
 * must hold exactly, also for attempts that start and end within one timer tick.
 */

export class CircuitOpenError extends SidecarError {
  constructor(readonly targetHost: string) {
    super("CIRCUIT_OPEN", "Circuit breaker is open");
  }
}

export interface BreakerOptions {
  failureThreshold: number;
  recoveryTimeoutMs: number;
  onTransition?: (targetHost: string, state: BreakerState) => void;
  now?: () => number;
}

interface HostBreaker {
  breaker: CircuitBreaker;
  counted: number;
  /** Event number of the end of the last counted failure or the last response, whichever is later. */
  mark: number;
  probing: boolean;
  /** Wall-clock time of the last opening, when opossum's recovery timer started. */
  openedAt: number;
}

export class BreakerRegistry {
  private readonly hosts = new Map<string, HostBreaker>();
  private events = 0;

  constructor(private readonly options: BreakerOptions) {}

  /**
   * Runs `call` under the host's breaker. `call` resolves for every HTTP response and for the
   * sender's own refusals, and rejects only on transport failures; `isNeutral` picks out the
   * refusals among resolved values. An open breaker rejects with CircuitOpenError without calling.
   */
  async run<T>(targetHost: string, call: () => Promise<T>, isNeutral: (value: T) => boolean = () => false): Promise<T> {
    const host = this.hostBreaker(targetHost);
    const probe = this.admit(host, targetHost);
    const started = ++this.events;
    let value: T;
    try {
      value = await call();
    } catch (error) {
      this.failed(host, started, probe);
      throw error;
    }
    if (probe) host.probing = false;
    if (!isNeutral(value)) this.answered(host, probe);
    return value;
  }

  /**
   * While the host's breaker is open: when it turns half-open and lets a probe through. Callers
   * park work until then instead of spending attempts that would be refused at once.
   */
  reopensAt(targetHost: string): number | undefined {
    const host = this.hosts.get(targetHost);
    return host?.breaker.opened ? host.openedAt + this.options.recoveryTimeoutMs : undefined;
  }

  state(targetHost: string): BreakerState {
    const host = this.hosts.get(targetHost);
    if (!host) return "closed";
    return stateOf(host.breaker);
  }

  /** Every host seen so far with its state, for the metrics to read. */
  states(): Map<string, BreakerState> {
    return new Map([...this.hosts].map(([name, host]) => [name, stateOf(host.breaker)]));
  }

  shutdown(): void {
    for (const host of this.hosts.values()) host.breaker.shutdown();
    this.hosts.clear();
  }

  /** Returns whether this call is the half-open probe. */
  private admit(host: HostBreaker, targetHost: string): boolean {
    if (host.breaker.opened) throw new CircuitOpenError(targetHost);
    if (!host.breaker.halfOpen) return false;
    if (host.probing) throw new CircuitOpenError(targetHost);
    host.probing = true;
    return true;
  }

  private failed(host: HostBreaker, started: number, probe: boolean): void {
    const ended = ++this.events;
    if (host.breaker.isShutdown) return;
    if (probe) {
      host.probing = false;
      host.mark = ended;
      host.breaker.open();
      return;
    }
    if (started < host.mark) return;
    host.mark = ended;
    host.counted += 1;
    if (host.counted >= this.options.failureThreshold && host.breaker.closed) host.breaker.open();
  }

  private answered(host: HostBreaker, probe: boolean): void {
    host.counted = 0;
    host.mark = ++this.events;
    if (host.breaker.isShutdown) return;
    // Only the probe decides a half-open breaker; a late answer to a request sent before it opened
    // resets the count but leaves the state alone.
    if (probe) host.breaker.close();
  }

  private hostBreaker(targetHost: string): HostBreaker {
    let host = this.hosts.get(targetHost);
    if (host) return host;
    // Never fired (see the header), so only the recovery timer of its options matters.
    const breaker = new CircuitBreaker(async () => undefined, { resetTimeout: this.options.recoveryTimeoutMs });
    const notify = (state: BreakerState) => () => this.options.onTransition?.(targetHost, state);
    breaker.on("open", () => {
      (host as HostBreaker).openedAt = (this.options.now ?? Date.now)();
      notify("open")();
    });
    breaker.on("halfOpen", notify("half_open"));
    breaker.on("close", notify("closed"));
    host = { breaker, counted: 0, mark: 0, probing: false, openedAt: 0 };
    this.hosts.set(targetHost, host);
    return host;
  }
}

function stateOf(breaker: { halfOpen: boolean; opened: boolean }): BreakerState {
  if (breaker.halfOpen) return "half_open";
  return breaker.opened ? "open" : "closed";
}
