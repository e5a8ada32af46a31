import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createDeliveryEngine, type DeliveryEngine } from "../../src/app/delivery-engine.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { refusedPort, startReceiver, type Receiver } from "../support/receiver.js";
import { settingsFrom } from "../support/settings.js";

const logger = createLogger("silent");
const open: (Receiver | DeliveryEngine)[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

async function receiver(...args: Parameters<typeof startReceiver>) {
  const r = await startReceiver(...args);
  open.push(r);
  return r;
}

function engine(configs: Record<string, unknown>[], http: Record<string, unknown> = {}, metrics = createMetrics()) {
  const settings = settingsFrom({
    http: { "allow-private-networks": true, timeout: "2s", ...http },
    configs,
  });
  const e = createDeliveryEngine(settings, logger, metrics);
  open.push(e);
  return e;
}

const tenant = (subscriptions: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({
  "tenant-id": "acme",
  name: "main",
  "backoff-ms": 10,
  subscriptions,
  ...extra,
});

describe("dispatcher over real HTTP", () => {
  it("retries a 503 and delivers on the 200 that follows: 2 attempts", async () => {
    const r = await receiver();
    r.behave((_req, i) => (i === 0 ? { kind: "respond", status: 503 } : { kind: "respond", status: 200 }));
    const e = engine([tenant([{ "event-type": "OrderPlaced", "target-url": `${r.url}/hook` }])]);
    const [execution] = await e.dispatcher.dispatch("acme", "OrderPlaced", { id: 1 });
    expect(execution).toMatchObject({ status: "DELIVERED", attempts: 2, response_status: 200, last_error: null });
    expect(execution?.delivered_at).not.toBeNull();
    expect(r.requests).toHaveLength(2);
  });

  it.each([400, 302, 404])("a %d is final after one attempt and no redirect is followed", async (status) => {
    const target = await receiver();
    const r = await receiver({ kind: "respond", status, headers: { location: `${target.url}/elsewhere` } });
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }])]);
    const [execution] = await e.dispatcher.dispatch("acme", "OrderPlaced", {});
    expect(execution).toMatchObject({ status: "FAILED", attempts: 1, response_status: status, last_error: `HTTP ${status}` });
    expect(r.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it("retries a timeout, and the timeout covers the whole request", async () => {
    const r = await receiver({ kind: "hang" });
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }], { "max-attempts": 2 })], { timeout: "300ms" });
    const [execution] = await e.dispatcher.dispatch("acme", "E", {});
    expect(execution).toMatchObject({ status: "FAILED", attempts: 2, last_error: "Request timed out" });
    expect(r.requests).toHaveLength(2);
  });

  it("retries a refused connection", async () => {
    const port = await refusedPort();
    const e = engine([tenant([{ "event-type": "*", "target-url": `http://127.0.0.1:${port}/` }], { "max-attempts": 3 })]);
    const [execution] = await e.dispatcher.dispatch("acme", "E", {});
    expect(execution?.status).toBe("FAILED");
    expect(execution?.attempts).toBe(3);
    expect(execution?.last_error).toContain("ECONNREFUSED");
  });

  it("opens the breaker after the threshold; the server then sees no request; a half-open probe closes it", async () => {
    const r = await receiver({ kind: "destroy" });
    const metrics = createMetrics();
    const e = engine(
      [tenant([{ "event-type": "*", "target-url": r.url }], { "max-attempts": 1 })],
      { "circuit-breaker": { "failure-threshold": 3, "recovery-timeout": "300ms" } },
      metrics,
    );
    const host = `127.0.0.1:${r.port}`;
    for (let i = 0; i < 3; i++) await e.dispatcher.dispatch("acme", "E", {});
    expect(r.requests).toHaveLength(3);
    expect(e.breakers.state(host)).toBe("open");

    const [rejected] = await e.dispatcher.dispatch("acme", "E", {});
    expect(rejected).toMatchObject({ status: "FAILED", attempts: 1, last_error: "Circuit breaker is open" });
    expect(r.requests).toHaveLength(3);
    expect(await metrics.registry.getSingleMetricAsString("callbacks_circuit_breaker_state")).toContain(
      `callbacks_circuit_breaker_state{target_host="${host}"} 2`,
    );

    r.behave({ kind: "respond", status: 204 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(e.breakers.state(host)).toBe("half_open");
    const [probe] = await e.dispatcher.dispatch("acme", "E", {});
    expect(probe?.status).toBe("DELIVERED");
    expect(e.breakers.state(host)).toBe("closed");
    expect(r.requests).toHaveLength(4);
    const transitions = await metrics.registry.getSingleMetricAsString("callbacks_circuit_breaker_transitions_total");
    for (const state of ["open", "half_open", "closed"]) expect(transitions).toContain(`state="${state}"} 1`);
  });

  it("a failed half-open probe re-opens the breaker", async () => {
    const r = await receiver({ kind: "destroy" });
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }], { "max-attempts": 1 })], {
      "circuit-breaker": { "failure-threshold": 1, "recovery-timeout": "200ms" },
    });
    await e.dispatcher.dispatch("acme", "E", {});
    await new Promise((resolve) => setTimeout(resolve, 300));
    await e.dispatcher.dispatch("acme", "E", {});
    expect(r.requests).toHaveLength(2);
    expect(e.breakers.state(`127.0.0.1:${r.port}`)).toBe("open");
  });

  it("any HTTP response resets the failure count, whatever its status", async () => {
    const r = await receiver();
    r.behave((_req, i) => (i % 2 === 0 ? { kind: "destroy" } : { kind: "respond", status: 500 }));
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }], { "max-attempts": 1 })], {
      "circuit-breaker": { "failure-threshold": 2 },
    });
    for (let i = 0; i < 6; i++) await e.dispatcher.dispatch("acme", "E", {});
    expect(r.requests).toHaveLength(6);
    expect(e.breakers.state(`127.0.0.1:${r.port}`)).toBe("closed");
  });

  it("host A's open breaker leaves host B untouched", async () => {
    const a = await receiver({ kind: "destroy" });
    const b = await receiver();
    const e = engine(
      [
        tenant([{ "event-type": "*", "target-url": a.url }], { name: "a", "max-attempts": 1 }),
        tenant([{ "event-type": "*", "target-url": b.url }], { name: "b", "max-attempts": 1 }),
      ],
      { "circuit-breaker": { "failure-threshold": 1 } },
    );
    await e.dispatcher.dispatch("acme", "E", {});
    const results = await e.dispatcher.dispatch("acme", "E", {});
    expect(results.map((x) => x.status)).toEqual(["FAILED", "DELIVERED"]);
    expect(results[0]?.last_error).toBe("Circuit breaker is open");
    expect(e.breakers.state(`127.0.0.1:${a.port}`)).toBe("open");
    expect(e.breakers.state(`127.0.0.1:${b.port}`)).toBe("closed");
    expect(b.requests).toHaveLength(2);
  });

  it("honours Retry-After on a 429 over a shorter backoff", async () => {
    const r = await receiver();
    r.behave((_req, i) => (i === 0 ? { kind: "respond", status: 429, headers: { "retry-after": "1" } } : { kind: "respond", status: 200 }));
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }])]);
    const [execution] = await e.dispatcher.dispatch("acme", "E", {});
    expect(execution?.status).toBe("DELIVERED");
    const gap = (r.requests[1]?.at ?? 0) - (r.requests[0]?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950);
  });

  it("an unauthorised domain is FAILED with pyfly's message and gets no connection", async () => {
    const r = await receiver();
    const e = engine([
      tenant([{ "event-type": "*", "target-url": r.url }], { "authorized-domains": [{ domain: "customer.example.com" }] }),
    ]);
    const [execution] = await e.dispatcher.dispatch("acme", "E", {});
    expect(execution).toMatchObject({ status: "FAILED", attempts: 0, last_error: "Domain not authorized" });
    expect(r.connections).toBe(0);
  });

  it("max-attempts 0 is FAILED with 0 attempts and no request", async () => {
    const r = await receiver();
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }], { "max-attempts": 0 })]);
    const [execution] = await e.dispatcher.dispatch("acme", "E", {});
    expect(execution).toMatchObject({ status: "FAILED", attempts: 0 });
    expect(r.connections).toBe(0);
  });

  it("sends the signed bytes as the body, with the identity headers and the subscription's own", async () => {
    const r = await receiver();
    const e = engine([
      tenant(
        [
          {
            "event-type": "OrderPlaced",
            "target-url": `${r.url}/orders?x=1`,
            headers: { "X-Team": "billing", "content-type": "application/vnd.acme+json" },
          },
        ],
        { secret: "topsecret" },
      ),
    ]);
    const [execution] = await e.dispatcher.dispatchJson("acme", "OrderPlaced", '{"b":"é","a":1.0,"n":12345678901234567890}');
    const [req] = r.requests;
    const body = req?.body.toString("utf8");
    expect(body).toBe('{"a":1.0,"b":"\\u00e9","n":12345678901234567890}');
    const expected = createHmac("sha256", "topsecret")
      .update(req?.body ?? "")
      .digest("hex");
    expect(req?.headers["x-pyfly-signature"]).toBe(`sha256=${expected}`);
    expect(req?.headers["x-pyfly-delivery-id"]).toBe(execution?.delivery_id);
    expect(req?.headers["x-pyfly-event-type"]).toBe("OrderPlaced");
    expect(req?.headers["x-pyfly-tenant-id"]).toBe("acme");
    expect(req?.headers["x-team"]).toBe("billing");
    expect(req?.headers["content-type"]).toBe("application/vnd.acme+json");
    expect(req?.headers["user-agent"]).toMatch(/^callback-sidecar\/\d+\.\d+\.\d+/);
    expect(req?.url).toBe("/orders?x=1");
  });

  it("sends no signature without a secret", async () => {
    const r = await receiver();
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }])]);
    await e.dispatcher.dispatch("acme", "E", { a: 1 });
    expect(r.requests[0]?.headers["x-pyfly-signature"]).toBeUndefined();
    expect(r.requests[0]?.headers["content-type"]).toBe("application/json");
  });

  it("matches exact and wildcard subscriptions of enabled configs only, one execution each", async () => {
    const r = await receiver();
    const e = engine([
      tenant(
        [
          { "event-type": "OrderPlaced", "target-url": `${r.url}/exact` },
          { "event-type": "*", "target-url": `${r.url}/all` },
          { "event-type": "InvoicePaid", "target-url": `${r.url}/other` },
          { "event-type": "Order*", "target-url": `${r.url}/glob-is-not-a-pattern` },
        ],
        { name: "on" },
      ),
      tenant([{ "event-type": "*", "target-url": `${r.url}/disabled` }], { name: "off", enabled: false }),
    ]);
    const executions = await e.dispatcher.dispatch("acme", "OrderPlaced", {});
    expect(executions.map((x) => new URL(x.target_url).pathname).sort()).toEqual(["/all", "/exact"]);
    expect(r.requests.map((x) => x.url).sort()).toEqual(["/all", "/exact"]);
    expect(await e.dispatcher.dispatch("other-tenant", "OrderPlaced", {})).toEqual([]);
  });

  it("delivers one event's subscriptions concurrently", async () => {
    const a = await receiver({ kind: "hang" });
    const b = await receiver();
    // A answers only once B has been reached: a sequential dispatcher would time out on A.
    a.behave({ kind: "hang" });
    const e = engine([
      tenant(
        [
          { "event-type": "*", "target-url": a.url },
          { "event-type": "*", "target-url": b.url },
        ],
        { "max-attempts": 1 },
      ),
    ]);
    const running = e.dispatcher.dispatch("acme", "E", {});
    await a.waitForRequests(1);
    await b.waitForRequests(1, 1500);
    expect(b.requests).toHaveLength(1);
    await running;
  });

  it("records every execution: PENDING first, then final, newest first in the store", async () => {
    const r = await receiver();
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }])]);
    r.behave({ kind: "hang" });
    const pending = e.dispatcher.dispatch("acme", "First", { n: 1 });
    await r.waitForRequests(1);
    expect(e.executions.find({ tenantId: "acme" })[0]?.status).toBe("PENDING");
    r.behave({ kind: "respond", status: 200 });
    await e.dispatcher.dispatch("acme", "Second", { n: 2 });
    const newest = e.executions.find({ tenantId: "acme", status: "DELIVERED" });
    expect(newest.map((x) => x.event_type)).toEqual(["Second"]);
    void pending.catch(() => undefined);
  });

  it("gives a redelivered Kafka record the same delivery id, and different records different ids", async () => {
    const r = await receiver();
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }])]);
    const source = { topic: "orders", partition: 2, offset: "41" };
    const [first] = await e.dispatcher.dispatch("acme", "E", {}, source);
    const [again] = await e.dispatcher.dispatch("acme", "E", {}, source);
    const [next] = await e.dispatcher.dispatch("acme", "E", {}, { ...source, offset: "42" });
    expect(first?.delivery_id).toBe(again?.delivery_id);
    expect(next?.delivery_id).not.toBe(first?.delivery_id);
    expect(r.requests.map((x) => x.headers["x-pyfly-delivery-id"])).toEqual([first?.delivery_id, first?.delivery_id, next?.delivery_id]);
  });

  it("dry-run opens no connection and records a delivery", async () => {
    const r = await receiver();
    const e = engine([tenant([{ "event-type": "*", "target-url": r.url }])], { "dry-run": true });
    const [execution] = await e.dispatcher.dispatch("acme", "E", {});
    expect(execution?.status).toBe("DELIVERED");
    expect(r.connections).toBe(0);
  });
});
