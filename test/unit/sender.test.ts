import { errors as undiciErrors } from "undici";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BreakerRegistry } from "../../src/delivery/breaker.js";
import { createHttpSender, refusalOf, type HttpSenderOptions, type OutboundRequest, type Sender } from "../../src/delivery/sender.js";
import { SsrfBlockedError } from "../../src/delivery/ssrf/guarded-connector.js";

/*
 * The real undici sender with its connector replaced: the connector answers with an error, so no
 * socket is ever opened. What these tests check is which outcomes reach the breaker.
 */

const RECOVERY_MS = 20;
const URL_ = new URL("https://hooks.example.com/orders");
const HOST = "hooks.example.com:443";

const open: (Sender | BreakerRegistry)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const x of open.splice(0)) await (x instanceof BreakerRegistry ? x.shutdown() : x.close());
});

function setup(connectError: () => Error) {
  const breakers = new BreakerRegistry({ failureThreshold: 1, recoveryTimeoutMs: RECOVERY_MS });
  const fake = { connects: 0, error: connectError };
  const connect: HttpSenderOptions["connect"] = () => (_options, callback) => {
    fake.connects += 1;
    callback(fake.error(), null);
  };
  const sender = createHttpSender({ timeoutMs: 2000, maxConnectionsPerHost: 4, breakers, connect });
  open.push(sender, breakers);
  return { sender, breakers, fake };
}

const refused = () => Object.assign(new Error("connect ECONNREFUSED 203.0.113.9:443"), { code: "ECONNREFUSED" });
const ssrf = () => new SsrfBlockedError("hooks.example.com", "10.0.0.1", "address 10.0.0.1 is private");

function request(headers: Record<string, string> = {}): OutboundRequest {
  return { url: URL_, headers: { "Content-Type": "application/json", "X-Pyfly-Event-Type": "order.created", ...headers }, body: "{}" };
}

describe("a request that cannot be built", () => {
  it.each([
    ["an event type no header can carry", { "X-Pyfly-Event-Type": "注文" }],
    ["a latin1 value undici would send as raw bytes", { "X-Pyfly-Tenant-Id": "société" }],
    ["a value with CR LF", { "X-Team": "a\r\nX-Injected: 1" }],
    ["a name that is not a token", { "X Team": "a" }],
    ["a framing header undici refuses", { "Transfer-Encoding": "chunked" }],
  ])("%s is rejected as invalid_request, outside the breaker", async (_what, headers) => {
    const { sender, breakers, fake } = setup(refused);
    for (let i = 0; i < 5; i++) {
      const { outcome, durationMs } = await sender.send(request(headers));
      expect(outcome).toMatchObject({ kind: "rejected", reason: "invalid_request" });
      expect(durationMs).toBe(0);
    }
    expect(fake.connects).toBe(0);
    expect(breakers.state(HOST)).toBe("closed");
    expect(breakers.states().size).toBe(0);
  });

  it("names the header but never repeats its value", async () => {
    const { sender } = setup(refused);
    const { outcome } = await sender.send(request({ Authorization: "Bearer s3cr3t\u0000" }));
    expect(outcome.kind === "rejected" && outcome.message).toContain("Authorization");
    expect(JSON.stringify(outcome)).not.toContain("s3cr3t");
  });
});

describe("an SSRF refusal", () => {
  it("is rejected as ssrf_blocked and never opens the breaker", async () => {
    const { sender, breakers, fake } = setup(ssrf);
    for (let i = 0; i < 3; i++) expect((await sender.send(request())).outcome).toMatchObject({ kind: "rejected", reason: "ssrf_blocked" });
    expect(fake.connects).toBe(3);
    expect(breakers.state(HOST)).toBe("closed");
  });

  it("as a half-open probe neither closes nor reopens the breaker", async () => {
    // The breaker's recovery timer runs on a fake clock; the fake connector needs no other timer.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const { sender, breakers, fake } = setup(refused);
    expect((await sender.send(request())).outcome).toMatchObject({ kind: "error", category: "transport_error" });
    expect(breakers.state(HOST)).toBe("open");
    await vi.advanceTimersByTimeAsync(RECOVERY_MS - 1);
    expect(breakers.state(HOST)).toBe("open");
    await vi.advanceTimersByTimeAsync(1);
    expect(breakers.state(HOST)).toBe("half_open");

    fake.error = ssrf;
    expect((await sender.send(request())).outcome).toMatchObject({ kind: "rejected", reason: "ssrf_blocked" });
    expect(breakers.state(HOST)).toBe("half_open");
    // The probe slot was given back: the next attempt is the probe, and its failure reopens.
    fake.error = refused;
    expect((await sender.send(request())).outcome).toMatchObject({ kind: "error", category: "transport_error" });
    expect(breakers.state(HOST)).toBe("open");
  });
});

describe("refusalOf", () => {
  it("takes undici's InvalidArgumentError as invalid_request", () => {
    expect(refusalOf(new undiciErrors.InvalidArgumentError("invalid x-pyfly-event-type header"))).toEqual({
      kind: "rejected",
      reason: "invalid_request",
      message: "request refused by the HTTP client: invalid x-pyfly-event-type header",
    });
  });

  it("takes an SSRF refusal, also wrapped as a cause, as ssrf_blocked", () => {
    expect(refusalOf(ssrf())).toMatchObject({ kind: "rejected", reason: "ssrf_blocked" });
    expect(refusalOf(new Error("wrapped", { cause: ssrf() }))).toMatchObject({ kind: "rejected", reason: "ssrf_blocked" });
  });

  it("leaves transport failures to the breaker", () => {
    expect(refusalOf(refused())).toBeUndefined();
    expect(refusalOf(new undiciErrors.SocketError("other side closed"))).toBeUndefined();
    expect(refusalOf(undefined)).toBeUndefined();
  });
});
