import CircuitBreaker from "opossum";

/*
 * One circuit breaker per target host, with pyfly's semantics on top of opossum's state machine:
 * `threshold` consecutive transport failures open it (opossum's own rolling error-rate trip is
 * disabled), any HTTP response resets the count, and after `recoveryTimeoutMs` exactly one
 * half-open probe goes through (opossum rejects the rest until the probe settles).
 */

export type BreakerState = "closed" | "half_open" | "open";

export class CircuitOpenError extends Error {
  constructor(readonly targetHost: string) {
    super("Circuit breaker is open");
    this.name = "CircuitOpenError";
  }
}

export interface BreakerOptions {
  failureThreshold: number;
  recoveryTimeoutMs: number;
  onTransition?: (targetHost: string, state: BreakerState) => void;
}

/** What the guarded call reports: a transport failure counts against the host, anything else not. */
export type GuardedResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface HostBreaker {
  breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  consecutiveFailures: number;
}

export class BreakerRegistry {
  private readonly hosts = new Map<string, HostBreaker>();

  constructor(private readonly options: BreakerOptions) {}

  /**
   * Runs `call` under the host's breaker. `call` resolves for every HTTP response and rejects only
   * on transport failures; an open breaker rejects with CircuitOpenError without calling it.
   */
  async run<T>(targetHost: string, call: () => Promise<T>): Promise<T> {
    const host = this.hostBreaker(targetHost);
    // Open (not yet half-open): refuse before opossum builds its error and emits its events; a dead
    // host subscribed to every event makes this the hot path.
    if (host.breaker.opened) throw new CircuitOpenError(targetHost);
    try {
      const value = (await host.breaker.fire(call)) as T;
      host.consecutiveFailures = 0;
      return value;
    } catch (error) {
      if ((error as { code?: string }).code === "EOPENBREAKER") throw new CircuitOpenError(targetHost);
      host.consecutiveFailures += 1;
      if (host.consecutiveFailures >= this.options.failureThreshold && !host.breaker.opened) host.breaker.open();
      throw error;
    }
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

  private hostBreaker(targetHost: string): HostBreaker {
    let host = this.hosts.get(targetHost);
    if (host) return host;
    const breaker = new CircuitBreaker((call: () => Promise<unknown>) => call(), {
      timeout: false, // the sender owns the whole-request timeout
      resetTimeout: this.options.recoveryTimeoutMs,
      volumeThreshold: Number.MAX_SAFE_INTEGER, // never trip on opossum's error rate
      errorThresholdPercentage: 100,
      rollingCountTimeout: 10_000,
    });
    const notify = (state: BreakerState) => () => this.options.onTransition?.(targetHost, state);
    breaker.on("open", notify("open"));
    breaker.on("halfOpen", notify("half_open"));
    breaker.on("close", notify("closed"));
    host = { breaker, consecutiveFailures: 0 };
    this.hosts.set(targetHost, host);
    return host;
  }
}

function stateOf(breaker: { halfOpen: boolean; opened: boolean }): BreakerState {
  if (breaker.halfOpen) return "half_open";
  return breaker.opened ? "open" : "closed";
}
