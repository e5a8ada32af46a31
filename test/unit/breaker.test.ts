import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BreakerRegistry, CircuitOpenError, type BreakerState } from "../../src/delivery/breaker.js";

const HOST = "hooks.example.com:443";
const RECOVERY_MS = 50;

/** A fake transport: counts calls; resolves like an HTTP response or rejects like a transport failure. */
function fakeCall() {
  const fake = {
    calls: 0,
    ok: (value = "response") => () => {
      fake.calls += 1;
      return Promise.resolve(value);
    },
    fail: (message = "connect ECONNREFUSED") => () => {
      fake.calls += 1;
      return Promise.reject(new Error(message));
    },
  };
  return fake;
}

describe("BreakerRegistry", () => {
  let transitions: [string, BreakerState][];
  let registry: BreakerRegistry;

  beforeEach(() => {
    vi.useFakeTimers();
    transitions = [];
    registry = new BreakerRegistry({
      failureThreshold: 3,
      recoveryTimeoutMs: RECOVERY_MS,
      onTransition: (host, state) => transitions.push([host, state]),
    });
  });

  afterEach(() => {
    registry.shutdown();
    vi.useRealTimers();
  });

  async function failTimes(n: number, fake = fakeCall(), host = HOST) {
    for (let i = 0; i < n; i++) await expect(registry.run(host, fake.fail())).rejects.toThrow("ECONNREFUSED");
    return fake;
  }

  it("passes a call's value through and starts closed", async () => {
    const fake = fakeCall();
    expect(registry.state(HOST)).toBe("closed");
    await expect(registry.run(HOST, fake.ok("the response"))).resolves.toBe("the response");
    expect(fake.calls).toBe(1);
    expect(registry.state(HOST)).toBe("closed");
    expect(transitions).toEqual([]);
  });

  it("passes a transport failure through unchanged", async () => {
    const error = new Error("socket hang up");
    await expect(registry.run(HOST, () => Promise.reject(error))).rejects.toBe(error);
  });

  it("stays closed below the threshold", async () => {
    await failTimes(2);
    expect(registry.state(HOST)).toBe("closed");
    const fake = fakeCall();
    await expect(registry.run(HOST, fake.ok())).resolves.toBe("response");
    expect(fake.calls).toBe(1);
  });

  it("opens after `failureThreshold` consecutive failures", async () => {
    await failTimes(3);
    expect(registry.state(HOST)).toBe("open");
    expect(transitions).toEqual([[HOST, "open"]]);
  });

  it("an open breaker rejects with CircuitOpenError('Circuit breaker is open') without calling", async () => {
    await failTimes(3);
    const fake = fakeCall();
    const error = await registry.run(HOST, fake.ok()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toBeInstanceOf(Error);
    expect((error as CircuitOpenError).message).toBe("Circuit breaker is open");
    expect((error as CircuitOpenError).targetHost).toBe(HOST);
    expect((error as CircuitOpenError).name).toBe("CircuitOpenError");
    expect(fake.calls).toBe(0);
    await expect(registry.run(HOST, fake.fail())).rejects.toBeInstanceOf(CircuitOpenError);
    expect(fake.calls).toBe(0);
    expect(registry.state(HOST)).toBe("open");
  });

  it("a resolved call resets the consecutive count", async () => {
    await failTimes(2);
    await registry.run(HOST, fakeCall().ok());
    await failTimes(2);
    expect(registry.state(HOST)).toBe("closed");
    await failTimes(1);
    expect(registry.state(HOST)).toBe("open");
  });

  it("stays open until the recovery timeout", async () => {
    await failTimes(3);
    await vi.advanceTimersByTimeAsync(RECOVERY_MS - 1);
    expect(registry.state(HOST)).toBe("open");
    const fake = fakeCall();
    await expect(registry.run(HOST, fake.ok())).rejects.toBeInstanceOf(CircuitOpenError);
    expect(fake.calls).toBe(0);
  });

  it("half-opens after the recovery timeout and lets exactly one probe through", async () => {
    await failTimes(3);
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    expect(registry.state(HOST)).toBe("half_open");
    expect(transitions).toEqual([
      [HOST, "open"],
      [HOST, "half_open"],
    ]);

    let finishProbe!: (v: string) => void;
    let probeCalls = 0;
    const probe = registry.run(HOST, () => {
      probeCalls += 1;
      return new Promise<string>((resolve) => (finishProbe = resolve));
    });
    // While the probe is in flight, everything else is turned away without a call.
    const others = fakeCall();
    for (let i = 0; i < 3; i++) await expect(registry.run(HOST, others.ok())).rejects.toBeInstanceOf(CircuitOpenError);
    expect(others.calls).toBe(0);
    expect(probeCalls).toBe(1);
    expect(registry.state(HOST)).toBe("half_open");

    finishProbe("probe response");
    await expect(probe).resolves.toBe("probe response");
    expect(registry.state(HOST)).toBe("closed");
    expect(transitions.at(-1)).toEqual([HOST, "closed"]);
    await expect(registry.run(HOST, others.ok())).resolves.toBe("response");
    expect(others.calls).toBe(1);
  });

  it("a successful probe closes it with a fresh count", async () => {
    await failTimes(3);
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    await registry.run(HOST, fakeCall().ok());
    expect(registry.state(HOST)).toBe("closed");
    await failTimes(2);
    expect(registry.state(HOST)).toBe("closed");
    await failTimes(1);
    expect(registry.state(HOST)).toBe("open");
    expect(transitions.map(([, s]) => s)).toEqual(["open", "half_open", "closed", "open"]);
  });

  it("a failed probe re-opens it, for another recovery timeout", async () => {
    await failTimes(3);
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    await failTimes(1);
    expect(registry.state(HOST)).toBe("open");
    const fake = fakeCall();
    await expect(registry.run(HOST, fake.ok())).rejects.toBeInstanceOf(CircuitOpenError);
    expect(fake.calls).toBe(0);
    expect(transitions.map(([, s]) => s)).toEqual(["open", "half_open", "open"]);

    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    expect(registry.state(HOST)).toBe("half_open");
    await expect(registry.run(HOST, fake.ok())).resolves.toBe("response");
    expect(fake.calls).toBe(1);
    expect(registry.state(HOST)).toBe("closed");
    expect(transitions.map(([, s]) => s)).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  it("keeps hosts independent", async () => {
    await failTimes(3);
    const other = "other.example.com:443";
    const fake = fakeCall();
    await expect(registry.run(other, fake.ok())).resolves.toBe("response");
    expect(fake.calls).toBe(1);
    expect(registry.state(other)).toBe("closed");
    expect(registry.state(HOST)).toBe("open");
    // The other host's failures are counted on their own.
    await failTimes(2, fakeCall(), other);
    expect(registry.state(other)).toBe("closed");
    expect(transitions).toEqual([[HOST, "open"]]);
    expect(registry.states()).toEqual(
      new Map<string, BreakerState>([
        [HOST, "open"],
        [other, "closed"],
      ]),
    );
  });

  it("interleaved failures on another host do not add to this host's count", async () => {
    const other = "other.example.com:443";
    await failTimes(2);
    await failTimes(2, fakeCall(), other);
    expect(registry.state(HOST)).toBe("closed");
    expect(registry.state(other)).toBe("closed");
  });

  it("reports unseen hosts as closed and lists only hosts seen", () => {
    expect(registry.state("never.example.com:443")).toBe("closed");
    expect(registry.states().size).toBe(0);
  });

  it("with threshold 1, a single failure opens it", async () => {
    registry.shutdown();
    registry = new BreakerRegistry({ failureThreshold: 1, recoveryTimeoutMs: RECOVERY_MS });
    await failTimes(1);
    expect(registry.state(HOST)).toBe("open");
  });

  it("works without an onTransition callback", async () => {
    registry.shutdown();
    registry = new BreakerRegistry({ failureThreshold: 2, recoveryTimeoutMs: RECOVERY_MS });
    await failTimes(2);
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    await registry.run(HOST, fakeCall().ok());
    expect(registry.state(HOST)).toBe("closed");
  });

  it("does not trip on opossum's own error rate, however many calls fail among successes", async () => {
    for (let i = 0; i < 50; i++) {
      await failTimes(2);
      await registry.run(HOST, fakeCall().ok());
    }
    expect(registry.state(HOST)).toBe("closed");
    expect(transitions).toEqual([]);
  });
});
