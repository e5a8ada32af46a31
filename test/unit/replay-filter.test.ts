import { describe, expect, it } from "vitest";
import type { DeliveryHandoff } from "../../src/kafka/handoff-records.js";
import { matchesReplayFilter } from "../../src/cli/replay-filter.js";

const handoff: DeliveryHandoff = {
  deliveryId: "d",
  executionId: "e",
  configId: "c",
  tenantId: "acme",
  eventType: "order.created",
  subscriptionEventType: "order.created",
  subscriptionFingerprint: "0123456789abcdef",
  target: "https://Hooks.Example.com/…",
  attempts: 5,
  createdAt: "2024-01-01T00:00:00.000Z",
  occurredAt: 0,
  lastError: "HTTP 503",
  responseStatus: 503,
  source: null,
};
const at = 1_700_000_000_000;

describe("matchesReplayFilter", () => {
  it("takes everything with an empty filter", () => {
    expect(matchesReplayFilter(handoff, at, {})).toBe(true);
  });

  it("filters by tenant, exactly", () => {
    expect(matchesReplayFilter(handoff, at, { tenant: "acme" })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { tenant: "globex" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { tenant: "ACME" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { tenant: "acm" })).toBe(false);
  });

  it("filters by the event's type (not the subscription's), exactly", () => {
    const wildcard = { ...handoff, subscriptionEventType: "*" };
    expect(matchesReplayFilter(wildcard, at, { eventType: "order.created" })).toBe(true);
    expect(matchesReplayFilter(wildcard, at, { eventType: "*" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { eventType: "order.updated" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { eventType: "order.*" })).toBe(false);
  });

  it("filters by target host, without port, case-insensitively", () => {
    expect(matchesReplayFilter(handoff, at, { targetHost: "hooks.example.com" })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { targetHost: "HOOKS.example.COM" })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { targetHost: "example.com" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { targetHost: "other.example.com" })).toBe(false);
  });

  it("filters by host:port, with the scheme's default port when the URL has none", () => {
    expect(matchesReplayFilter(handoff, at, { targetHost: "hooks.example.com:443" })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { targetHost: "hooks.example.com:80" })).toBe(false);
    const http = { ...handoff, target: "http://hooks.example.com/…" };
    expect(matchesReplayFilter(http, at, { targetHost: "hooks.example.com:80" })).toBe(true);
    expect(matchesReplayFilter(http, at, { targetHost: "hooks.example.com:443" })).toBe(false);
    const custom = { ...handoff, target: "https://hooks.example.com:8443/…" };
    expect(matchesReplayFilter(custom, at, { targetHost: "hooks.example.com:8443" })).toBe(true);
    expect(matchesReplayFilter(custom, at, { targetHost: "hooks.example.com" })).toBe(true);
    expect(matchesReplayFilter(custom, at, { targetHost: "hooks.example.com:443" })).toBe(false);
  });

  it("a target that is not a URL matches no host filter and throws nothing (dead letters are data)", () => {
    const broken = { ...handoff, target: "not a url" };
    expect(matchesReplayFilter(broken, at, { targetHost: "hooks.example.com" })).toBe(false);
    expect(matchesReplayFilter(broken, at, { tenant: "acme" })).toBe(true);
  });

  it("since is inclusive, until exclusive", () => {
    expect(matchesReplayFilter(handoff, at, { since: at })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { since: at + 1 })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { since: at - 1 })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { until: at })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { until: at + 1 })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { until: at - 1 })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { since: at, until: at + 1 })).toBe(true);
    expect(matchesReplayFilter(handoff, at, { since: 0 })).toBe(true);
  });

  it("requires every given criterion", () => {
    const all = { tenant: "acme", eventType: "order.created", targetHost: "hooks.example.com", since: at - 10, until: at + 10 };
    expect(matchesReplayFilter(handoff, at, all)).toBe(true);
    expect(matchesReplayFilter(handoff, at, { ...all, tenant: "globex" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { ...all, eventType: "x" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { ...all, targetHost: "x.example.com" })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { ...all, since: at + 1 })).toBe(false);
    expect(matchesReplayFilter(handoff, at, { ...all, until: at })).toBe(false);
  });
});
