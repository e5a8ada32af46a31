import { afterEach, describe, expect, it } from "vitest";
import { BreakerRegistry } from "../../src/delivery/breaker.js";
import { createHttpSender, type OutboundRequest, type Sender } from "../../src/delivery/sender.js";
import { refusedPort, startReceiver, type Receiver } from "../support/receiver.js";

/*
 * The real sender and breaker against real sockets on 127.0.0.1 (no broker): the acceptance cases
 * for the breaker. A stall of every in-flight request is one incident; a host that
 * refuses connections still opens the breaker within the threshold.
 */

const THRESHOLD = 5;
const TIMEOUT_MS = 300;
const open: (Sender | BreakerRegistry | Receiver)[] = [];

afterEach(async () => {
  for (const x of open.splice(0)) await (x instanceof BreakerRegistry ? x.shutdown() : x.close());
});

function sender(failureThreshold = THRESHOLD) {
  const breakers = new BreakerRegistry({ failureThreshold, recoveryTimeoutMs: 60_000 });
  const s = createHttpSender({ timeoutMs: TIMEOUT_MS, maxConnectionsPerHost: 32, breakers, connect: () => undefined as never });
  open.push(s, breakers);
  return { sender: s, breakers };
}

async function receiver(...args: Parameters<typeof startReceiver>) {
  const r = await startReceiver(...args);
  open.push(r);
  return r;
}

const post = (url: string, headers: Record<string, string> = {}): OutboundRequest => ({
  url: new URL(`${url}/hooks`),
  headers: { "Content-Type": "application/json", "X-Pyfly-Event-Type": "order.created", ...headers },
  body: "{}",
});

describe("breaker over real HTTP", () => {
  it("a receiver that stalls once past the timeout with 32 deliveries in flight keeps its breaker closed", async () => {
    const r = await receiver();
    r.behave((_req, index) => (index < 32 ? { kind: "hang" } : { kind: "respond", status: 200 }));
    const { sender: s, breakers } = sender();
    const host = `127.0.0.1:${r.port}`;

    const outcomes = await Promise.all(Array.from({ length: 32 }, () => s.send(post(r.url)).then((x) => x.outcome)));
    expect(outcomes.every((o) => o.kind === "error" && o.category === "timeout")).toBe(true);
    expect(r.requests).toHaveLength(32);
    expect(breakers.state(host)).toBe("closed");
    expect((await s.send(post(r.url))).outcome).toEqual({ kind: "response", status: 200 });
  });

  it("a refusing host opens it at the threshold-th sequential attempt", async () => {
    const url = `http://127.0.0.1:${await refusedPort()}`;
    const { sender: s, breakers } = sender();
    for (let i = 1; i <= THRESHOLD; i++) {
      expect(breakers.state(new URL(url).host)).toBe("closed");
      expect((await s.send(post(url))).outcome).toMatchObject({ kind: "error", category: "transport_error" });
    }
    expect(breakers.state(new URL(url).host)).toBe("open");
    expect((await s.send(post(url))).outcome).toMatchObject({ kind: "error", category: "circuit_open" });
  });

  it("a refusing host under concurrency opens it within threshold waves", async () => {
    const url = `http://127.0.0.1:${await refusedPort()}`;
    const { sender: s, breakers } = sender();
    for (let wave = 1; wave <= THRESHOLD; wave++) {
      expect(breakers.state(new URL(url).host)).toBe("closed");
      await Promise.all(Array.from({ length: 8 }, () => s.send(post(url))));
    }
    expect(breakers.state(new URL(url).host)).toBe("open");
  });

  it("an event type no header can carry is rejected before the network and leaves the breaker alone", async () => {
    const r = await receiver();
    const { sender: s, breakers } = sender(1);
    for (let i = 0; i < 3; i++) {
      expect((await s.send(post(r.url, { "X-Pyfly-Event-Type": "注文確定" }))).outcome).toMatchObject({
        kind: "rejected",
        reason: "invalid_request",
      });
    }
    expect(r.requests).toHaveLength(0);
    expect(breakers.state(`127.0.0.1:${r.port}`)).toBe("closed");
    expect((await s.send(post(r.url))).outcome).toEqual({ kind: "response", status: 200 });
  });
});
