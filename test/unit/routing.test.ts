import { describe, expect, it } from "vitest";
import { deliveryIdFor } from "../../src/domain/delivery-id.js";
import { CallbackConfig, type CallbackSubscription, type EventSource } from "../../src/domain/models.js";
import { matchesEventType, planDeliveries } from "../../src/domain/routing.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DERIVED_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RANDOM_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function sub(event_type: string, target_url = "https://hooks.example.com/in", headers: Record<string, string> = {}): CallbackSubscription {
  return { event_type, target_url, headers, rate_limit: null, format: "pyfly", filter: null };
}

function config(id: string, subscriptions: CallbackSubscription[], extra: Partial<CallbackConfig> = {}): CallbackConfig {
  return CallbackConfig.parse({ id, tenant_id: "acme", name: id, subscriptions, ...extra });
}

const source: EventSource = { topic: "orders", partition: 3, offset: "42" };

describe("matchesEventType", () => {
  it("matches the exact event type", () => {
    expect(matchesEventType(sub("order.created"), "order.created")).toBe(true);
  });

  it("matches anything with '*'", () => {
    expect(matchesEventType(sub("*"), "order.created")).toBe(true);
    expect(matchesEventType(sub("*"), "*")).toBe(true);
    expect(matchesEventType(sub("*"), "x")).toBe(true);
  });

  it("is not a glob, prefix, regex or case-insensitive match", () => {
    expect(matchesEventType(sub("order.*"), "order.created")).toBe(false);
    expect(matchesEventType(sub("order.created"), "order.created.v2")).toBe(false);
    expect(matchesEventType(sub("order"), "order.created")).toBe(false);
    expect(matchesEventType(sub("order.created"), "Order.Created")).toBe(false);
    expect(matchesEventType(sub("*.created"), "order.created")).toBe(false);
    expect(matchesEventType(sub("order.?reated"), "order.created")).toBe(false);
    expect(matchesEventType(sub("order..*"), "order.created")).toBe(false);
    expect(matchesEventType(sub(" order.created"), "order.created")).toBe(false);
  });

  it("an event literally typed '*' matches only '*' or itself", () => {
    expect(matchesEventType(sub("order.created"), "*")).toBe(false);
  });
});

describe("planDeliveries", () => {
  it("plans one delivery per matching subscription, in configuration order", () => {
    const a = config("cfg-a", [sub("order.created", "https://a.example/1"), sub("other"), sub("*", "https://a.example/2")]);
    const b = config("cfg-b", [sub("order.created", "https://b.example/1")]);
    const planned = planDeliveries([a, b], "order.created", source);
    expect(planned.map((p) => [p.config.id, p.subscription.target_url])).toEqual([
      ["cfg-a", "https://a.example/1"],
      ["cfg-a", "https://a.example/2"],
      ["cfg-b", "https://b.example/1"],
    ]);
    expect(planned[0]?.config).toBe(a);
    expect(planned[0]?.subscription).toBe(a.subscriptions[0]);
    expect(planned[2]?.config).toBe(b);
  });

  it("skips disabled configs", () => {
    const off = config("off", [sub("order.created", "https://off.example/")], { enabled: false });
    const on = config("on", [sub("order.created", "https://on.example/")]);
    const planned = planDeliveries([off, on], "order.created", source);
    expect(planned.map((p) => p.config.id)).toEqual(["on"]);
    expect(planDeliveries([off], "order.created", source)).toEqual([]);
  });

  it("plans nothing when nothing matches or there are no configs", () => {
    expect(planDeliveries([config("c", [sub("a"), sub("b")])], "c", source)).toEqual([]);
    expect(planDeliveries([config("c", [])], "a", source)).toEqual([]);
    expect(planDeliveries([], "a", source)).toEqual([]);
  });

  it("does not glob-match", () => {
    expect(planDeliveries([config("c", [sub("order.*")])], "order.created", source)).toEqual([]);
  });

  it("keeps duplicate subscriptions as distinct deliveries with distinct ids", () => {
    const dup = sub("order.created", "https://same.example/");
    const c = config("c", [dup, { ...dup }, { ...dup, headers: { "X-Other": "1" } }]);
    const planned = planDeliveries([c], "order.created", source);
    expect(planned).toHaveLength(3);
    expect(new Set(planned.map((p) => p.deliveryId)).size).toBe(3);
    for (const p of planned) expect(p.deliveryId).toMatch(DERIVED_UUID);
  });

  it("gives the same ids when the same record is planned again (redelivery)", () => {
    const configs = () => [
      config("c1", [
        sub("order.created", "https://a.example/"),
        sub("order.created", "https://a.example/"),
        sub("*", "https://b.example/"),
      ]),
      config("c2", [sub("order.created", "https://a.example/")]),
    ];
    const first = planDeliveries(configs(), "order.created", { ...source });
    const again = planDeliveries(configs(), "order.created", { ...source });
    expect(again.map((p) => p.deliveryId)).toEqual(first.map((p) => p.deliveryId));
    expect(new Set(first.map((p) => p.deliveryId)).size).toBe(4);
  });

  it("uses the config id, so the same subscription under two configs gets two ids", () => {
    const s = sub("order.created", "https://a.example/");
    const planned = planDeliveries([config("c1", [s]), config("c2", [s])], "order.created", source);
    expect(planned[0]?.deliveryId).not.toBe(planned[1]?.deliveryId);
  });

  it("gives random ids without a source, different on every dispatch", () => {
    const configs = [config("c", [sub("order.created"), sub("order.created")])];
    const first = planDeliveries(configs, "order.created", null);
    const again = planDeliveries(configs, "order.created", null);
    for (const p of [...first, ...again]) expect(p.deliveryId).toMatch(RANDOM_UUID);
    expect(new Set([...first, ...again].map((p) => p.deliveryId)).size).toBe(4);
  });
});

describe("deliveryIdFor", () => {
  const s = sub("order.created", "https://hooks.example.com/in");
  const id = deliveryIdFor(source, "cfg", s, 0);

  it("is a UUID-shaped string (version 8, RFC variant)", () => {
    expect(id).toMatch(UUID);
    expect(id).toMatch(DERIVED_UUID);
  });

  it("is deterministic for the same record, config, subscription and occurrence", () => {
    expect(deliveryIdFor({ topic: "orders", partition: 3, offset: "42" }, "cfg", { ...s, headers: {} }, 0)).toBe(id);
  });

  it("does not depend on the subscription's headers", () => {
    expect(deliveryIdFor(source, "cfg", { ...s, headers: { Authorization: "x" } }, 0)).toBe(id);
  });

  it.each([
    ["offset", { ...source, offset: "43" }, "cfg", s, 0],
    ["partition", { ...source, partition: 4 }, "cfg", s, 0],
    ["topic", { ...source, topic: "orders-v2" }, "cfg", s, 0],
    ["config", source, "cfg-2", s, 0],
    ["target", source, "cfg", { ...s, target_url: "https://hooks.example.com/in2" }, 0],
    ["subscription event type", source, "cfg", { ...s, event_type: "*" }, 0],
    ["occurrence", source, "cfg", s, 1],
  ] as const)("changes with the %s", (_what, src, configId, subscription, occurrence) => {
    expect(deliveryIdFor(src, configId, subscription, occurrence)).not.toBe(id);
  });

  it("does not confuse fields whose concatenation is the same", () => {
    const x = deliveryIdFor({ topic: "t1", partition: 1, offset: "23" }, "cfg", s, 0);
    const y = deliveryIdFor({ topic: "t1", partition: 12, offset: "3" }, "cfg", s, 0);
    expect(x).not.toBe(y);
  });

  it("handles offsets beyond 2^53 exactly", () => {
    const big1 = deliveryIdFor({ ...source, offset: "9007199254740993" }, "cfg", s, 0);
    const big2 = deliveryIdFor({ ...source, offset: "9007199254740992" }, "cfg", s, 0);
    expect(big1).not.toBe(big2);
  });

  it("is random (v4) without a source", () => {
    const a = deliveryIdFor(null, "cfg", s, 0);
    const b = deliveryIdFor(null, "cfg", s, 0);
    expect(a).toMatch(RANDOM_UUID);
    expect(b).toMatch(RANDOM_UUID);
    expect(a).not.toBe(b);
  });
});

describe("deliveryIdFor with the producer's event id", () => {
  const s = sub("order.created", "https://hooks.example.com/in");
  const acme = { tenantId: "acme", eventId: "evt-1" };

  it("is the same wherever the event lands (a re-publish at other coordinates, another topic)", () => {
    const first = deliveryIdFor({ topic: "orders", partition: 0, offset: "7" }, "cfg", s, 0, acme);
    expect(first).toMatch(DERIVED_UUID);
    expect(deliveryIdFor({ topic: "orders-dr", partition: 5, offset: "90210" }, "cfg", s, 0, acme)).toBe(first);
    expect(deliveryIdFor(null, "cfg", s, 0, acme)).toBe(first);
  });

  it("differs by tenant, event id, config, subscription and occurrence, and from the coordinate-derived id", () => {
    const base = deliveryIdFor(source, "cfg", s, 0, acme);
    const others = [
      deliveryIdFor(source, "cfg", s, 0, { ...acme, tenantId: "globex" }),
      deliveryIdFor(source, "cfg", s, 0, { ...acme, eventId: "evt-2" }),
      deliveryIdFor(source, "cfg-2", s, 0, acme),
      deliveryIdFor(source, "cfg", sub("order.created", "https://hooks.example.com/other"), 0, acme),
      deliveryIdFor(source, "cfg", s, 1, acme),
      deliveryIdFor(source, "cfg", s, 0),
    ];
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
  });
});
