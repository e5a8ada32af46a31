import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BreakerRegistry, CircuitOpenError } from "../../src/delivery/breaker.js";
import type { BreakerState } from "../../src/domain/outcomes.js";
import { hasCode } from "../../src/shared/errors.js";

const HOST = "hooks.example.com:443";
const RECOVERY_MS = 50;

/** A fake transport: counts calls; resolves like an HTTP response or rejects like a transport failure. */
function fakeCall() {
  const fake = {
    calls: 0,
    ok:
      (value = "response") =>
      () => {
        fake.calls += 1;
        return Promise.resolve(value);
      },
    fail:
      (message = "connect ECONNREFUSED") =>
      () => {
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

  it("says when an open breaker lets its probe through, and nothing while closed or half-open", async () => {
    const fake = fakeCall();
    expect(registry.reopensAt(HOST)).toBeUndefined();
    for (let i = 0; i < 3; i++) await registry.run(HOST, fake.fail()).catch(() => undefined);
    expect(registry.state(HOST)).toBe("open");
    expect(registry.reopensAt(HOST)).toBe(Date.now() + RECOVERY_MS);
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    expect(registry.state(HOST)).toBe("half_open");
    expect(registry.reopensAt(HOST)).toBeUndefined();
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
    expect(hasCode(error, "CIRCUIT_OPEN")).toBe(true);
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

/** An attempt the test settles by hand, to shape which attempts overlap. */
function pending<T = string>() {
  let settle!: { resolve: (v: T) => void; reject: (e: Error) => void };
  const call = () =>
    new Promise<T>((resolve, reject) => {
      settle = { resolve, reject };
    });
  return { call, settle: () => settle };
}

describe("BreakerRegistry under concurrency: overlapping failures are one incident", () => {
  const THRESHOLD = 5;
  let registry: BreakerRegistry;
  let transitions: BreakerState[];

  beforeEach(() => {
    vi.useFakeTimers();
    transitions = [];
    registry = new BreakerRegistry({
      failureThreshold: THRESHOLD,
      recoveryTimeoutMs: RECOVERY_MS,
      onTransition: (_h, s) => transitions.push(s),
    });
  });

  afterEach(() => {
    registry.shutdown();
    vi.useRealTimers();
  });

  const refuse = () => expect(registry.run(HOST, fakeCall().fail())).rejects.toThrow("ECONNREFUSED");
  const timeoutAfter = (ms: number) => () =>
    new Promise<never>((_resolve, reject) =>
      setTimeout(() => reject(Object.assign(new Error("Request timed out"), { name: "TimeoutError" })), ms),
    );

  it("32 attempts in flight that time out together count as one failure", async () => {
    const burst = Array.from({ length: 32 }, () => registry.run(HOST, timeoutAfter(2000)).catch((e: Error) => e.name));
    await vi.advanceTimersByTimeAsync(2000);
    expect(await Promise.all(burst)).toEqual(Array(32).fill("TimeoutError"));
    expect(registry.state(HOST)).toBe("closed");
    // The count is exactly 1: three more sequential failures leave it closed, the fourth opens it.
    for (let i = 0; i < THRESHOLD - 2; i++) await refuse();
    expect(registry.state(HOST)).toBe("closed");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
    expect(transitions).toEqual(["open"]);
  });

  it("attempts that time out one after another open it, as pyfly's sequential sender does", async () => {
    for (let i = 0; i < THRESHOLD; i++) {
      expect(registry.state(HOST)).toBe("closed");
      const attempt = registry.run(HOST, timeoutAfter(2000)).catch(() => undefined);
      await vi.advanceTimersByTimeAsync(2000);
      await attempt;
    }
    expect(registry.state(HOST)).toBe("open");
  });

  it("a refusing host opens after `failureThreshold` sequential refusals", async () => {
    for (let i = 0; i < THRESHOLD - 1; i++) await refuse();
    expect(registry.state(HOST)).toBe("closed");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
  });

  it("overlapping refusals after a counted one add nothing and delay nothing: threshold - 1 sequential ones then open it", async () => {
    const first = pending();
    const firstRun = registry.run(HOST, first.call);
    const overlapping = Array.from({ length: 10 }, () => pending());
    const overlappingRuns = overlapping.map((p) => registry.run(HOST, p.call).catch(() => "failed"));
    first.settle().reject(new Error("connect ECONNREFUSED"));
    await expect(firstRun).rejects.toThrow("ECONNREFUSED");
    // Each of these started before the counted failure ended: the same incident.
    for (const p of overlapping) p.settle().reject(new Error("connect ECONNREFUSED"));
    await Promise.all(overlappingRuns);
    expect(registry.state(HOST)).toBe("closed");
    // The guaranteed bound: the threshold-th failure of a sequential chain opens it, whatever overlapped.
    for (let i = 0; i < THRESHOLD - 2; i++) await refuse();
    expect(registry.state(HOST)).toBe("closed");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
  });

  it("each wave of concurrent refusals that starts after the previous wave failed counts once", async () => {
    for (let wave = 0; wave < THRESHOLD; wave++) {
      expect(registry.state(HOST)).toBe("closed");
      const fake = fakeCall();
      await Promise.all(Array.from({ length: 8 }, () => registry.run(HOST, fake.fail()).catch(() => undefined)));
      expect(fake.calls).toBe(8);
    }
    expect(registry.state(HOST)).toBe("open");
  });

  it("a failure of an attempt that started before the last HTTP response does not count", async () => {
    registry.shutdown();
    registry = new BreakerRegistry({ failureThreshold: 1, recoveryTimeoutMs: RECOVERY_MS });
    const slow = pending();
    const slowRun = registry.run(HOST, slow.call);
    await registry.run(HOST, fakeCall().ok());
    slow.settle().reject(new Error("socket hang up"));
    await expect(slowRun).rejects.toThrow("socket hang up");
    expect(registry.state(HOST)).toBe("closed");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
  });

  it("any HTTP response resets the count", async () => {
    for (let i = 0; i < THRESHOLD - 1; i++) await refuse();
    await registry.run(HOST, fakeCall().ok("HTTP 503"));
    for (let i = 0; i < THRESHOLD - 1; i++) await refuse();
    expect(registry.state(HOST)).toBe("closed");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
  });

  it("late results of attempts sent before it opened decide nothing while it is half-open", async () => {
    const late = Array.from({ length: 2 }, () => pending());
    const lateRuns = late.map((p) => registry.run(HOST, p.call).catch(() => "failed"));
    for (let i = 0; i < THRESHOLD; i++) await refuse();
    expect(registry.state(HOST)).toBe("open");
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    expect(registry.state(HOST)).toBe("half_open");
    late[0]!.settle().reject(new Error("socket hang up"));
    late[1]!.settle().resolve("HTTP 200");
    await Promise.all(lateRuns);
    expect(registry.state(HOST)).toBe("half_open");
    // The probe slot is still free.
    await expect(registry.run(HOST, fakeCall().ok())).resolves.toBe("response");
    expect(registry.state(HOST)).toBe("closed");
  });
});

describe("BreakerRegistry: neutral outcomes say nothing about the host", () => {
  const neutral = (value: string) => value === "refused by policy";
  let registry: BreakerRegistry;
  let transitions: BreakerState[];

  beforeEach(() => {
    vi.useFakeTimers();
    transitions = [];
    registry = new BreakerRegistry({ failureThreshold: 3, recoveryTimeoutMs: RECOVERY_MS, onTransition: (_h, s) => transitions.push(s) });
  });

  afterEach(() => {
    registry.shutdown();
    vi.useRealTimers();
  });

  const refuse = () => expect(registry.run(HOST, fakeCall().fail(), neutral)).rejects.toThrow("ECONNREFUSED");
  const refusedByPolicy = () => registry.run(HOST, fakeCall().ok("refused by policy"), neutral);

  it("passes the neutral value through", async () => {
    await expect(refusedByPolicy()).resolves.toBe("refused by policy");
  });

  it("a neutral outcome neither counts nor resets the count", async () => {
    await refuse();
    await refuse();
    for (let i = 0; i < 10; i++) await refusedByPolicy();
    expect(registry.state(HOST)).toBe("closed");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
  });

  it("a neutral half-open probe neither closes nor reopens it, and frees the slot for the next probe", async () => {
    for (let i = 0; i < 3; i++) await refuse();
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    expect(registry.state(HOST)).toBe("half_open");

    const probe = pending();
    const probeRun = registry.run(HOST, probe.call, neutral);
    await expect(registry.run(HOST, fakeCall().ok(), neutral)).rejects.toBeInstanceOf(CircuitOpenError);
    probe.settle().resolve("refused by policy");
    await expect(probeRun).resolves.toBe("refused by policy");
    expect(registry.state(HOST)).toBe("half_open");
    expect(transitions).toEqual(["open", "half_open"]);

    // Another neutral probe, then a failing one: it reopens, as a failed probe does.
    await refusedByPolicy();
    expect(registry.state(HOST)).toBe("half_open");
    await refuse();
    expect(registry.state(HOST)).toBe("open");
    await vi.advanceTimersByTimeAsync(RECOVERY_MS);
    await expect(registry.run(HOST, fakeCall().ok(), neutral)).resolves.toBe("response");
    expect(registry.state(HOST)).toBe("closed");
    expect(transitions).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });
});
