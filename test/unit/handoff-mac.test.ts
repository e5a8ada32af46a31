import { describe, expect, it } from "vitest";
import { handoffKeys } from "../../src/kafka/handoff-mac.js";
import { H, isSealed, retryRecord, sealed, type DeliveryHandoff } from "../../src/kafka/handoff-records.js";

const handoff: DeliveryHandoff = {
  deliveryId: "d-1",
  executionId: "e-1",
  configId: "acme-cfg",
  tenantId: "acme",
  eventType: "OrderPlaced",
  subscriptionEventType: "*",
  subscriptionFingerprint: "0123456789abcdef",
  target: "https://hooks.example.com/…",
  attempts: 1,
  createdAt: "2026-01-01T00:00:00.000Z",
  occurredAt: 1,
  lastError: "HTTP 503",
  responseStatus: 503,
  source: null,
};
const config = { id: "acme-cfg", secret: "a-pyfly-secret-of-some-length" };
/** Headers as a consumer reads them back: Buffers. */
const consumed = (headers: Record<string, Buffer | string>) =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)]));

describe("signed handoff records", () => {
  const keys = handoffKeys([], config);
  const record = sealed(retryRecord(handoff, '{"a":1}', 5, { traceparent: "t" }, null, "group-a"), "retry", keys[0] as Buffer);

  it("a sealed record verifies as read back from Kafka", () => {
    expect(isSealed(consumed(record.headers), Buffer.from(record.value), "retry", keys)).toBe(true);
  });

  it("a changed value, a changed header of ours, a missing MAC or another kind does not verify", () => {
    const headers = consumed(record.headers);
    expect(isSealed(headers, Buffer.from('{"a":2}'), "retry", keys)).toBe(false);
    expect(isSealed({ ...headers, [H.tenantId]: Buffer.from("globex") }, Buffer.from(record.value), "retry", keys)).toBe(false);
    expect(isSealed({ ...headers, [H.attempts]: Buffer.from("0") }, Buffer.from(record.value), "retry", keys)).toBe(false);
    expect(isSealed({ ...headers, "callback-extra": Buffer.from("x") }, Buffer.from(record.value), "retry", keys)).toBe(false);
    const { [H.mac]: _mac, ...unsigned } = headers;
    expect(isSealed(unsigned, Buffer.from(record.value), "retry", keys)).toBe(false);
    expect(isSealed(headers, Buffer.from(record.value), "dead-letter", keys)).toBe(false);
  });

  it("headers that are not ours may change (they are carried, not relied on)", () => {
    expect(isSealed({ ...consumed(record.headers), traceparent: Buffer.from("other") }, Buffer.from(record.value), "retry", keys)).toBe(
      true,
    );
  });

  it("the derived key takes the config's secret: another secret cannot forge it", () => {
    expect(
      isSealed(
        consumed(record.headers),
        Buffer.from(record.value),
        "retry",
        handoffKeys([], { ...config, secret: "another-secret-entirely" }),
      ),
    ).toBe(false);
  });

  it("rotation: the first configured key signs, every configured key and the derived one verify", () => {
    const oldKey = "o".repeat(32);
    const newKey = "n".repeat(32);
    const before = sealed(retryRecord(handoff, "{}", 5, undefined, null, "g"), "retry", handoffKeys([oldKey], config)[0] as Buffer);
    const during = handoffKeys([newKey, oldKey], config);
    expect(isSealed(consumed(before.headers), Buffer.from(before.value), "retry", during)).toBe(true);
    expect(isSealed(consumed(record.headers), Buffer.from(record.value), "retry", during)).toBe(true);
    expect(isSealed(consumed(before.headers), Buffer.from(before.value), "retry", handoffKeys([newKey], undefined))).toBe(false);
  });

  it("a config without a secret: the id-derived key stops verifying once handoff keys are configured", () => {
    const open = { id: "open-cfg", secret: null };
    const record = sealed(
      retryRecord({ ...handoff, configId: "open-cfg" }, "{}", 5, undefined, null, "g"),
      "retry",
      handoffKeys([], open)[0] as Buffer,
    );
    expect(isSealed(consumed(record.headers), Buffer.from(record.value), "retry", handoffKeys([], open))).toBe(true);
    expect(isSealed(consumed(record.headers), Buffer.from(record.value), "retry", handoffKeys(["k".repeat(32)], open))).toBe(false);
  });

  it("a secret rotation keeps records written under the old secret verifying (additional secrets)", () => {
    const rotated = { id: "acme-cfg", secret: "the-new-secret-of-some-length", additional_secrets: [config.secret] };
    expect(isSealed(consumed(record.headers), Buffer.from(record.value), "retry", handoffKeys([], rotated))).toBe(true);
  });
});
