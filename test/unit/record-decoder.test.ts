import { describe, expect, it } from "vitest";
import { CLOUDEVENTS_HEADERS, decodeRecordHeaders, type HeaderNames, type RecordHeaders } from "../../src/kafka/record-decoder.js";

const DEFAULT: HeaderNames = { tenant: "x-tenant-id", eventType: "x-event-type", eventId: "x-event-id" };
const decode = (headers: RecordHeaders, names: HeaderNames = DEFAULT) => decodeRecordHeaders(headers, names);
const ok = (tenantId: string, eventType: string, eventId: string | null = null) => ({ ok: true, tenantId, eventType, eventId });

describe("decodeRecordHeaders", () => {
  it("reads the default headers", () => {
    expect(decode({ "x-tenant-id": "acme", "x-event-type": "order.created" })).toEqual(ok("acme", "order.created"));
  });

  it("reads Buffers (as kafkajs gives them) and strings alike", () => {
    expect(decode({ "x-tenant-id": Buffer.from("acme"), "x-event-type": Buffer.from("order.created") })).toEqual(
      ok("acme", "order.created"),
    );
    expect(decode({ "x-tenant-id": Buffer.from("acme"), "x-event-type": "order.created" })).toEqual(ok("acme", "order.created"));
  });

  it("decodes UTF-8, and refuses what no HTTP header can carry (printable ASCII only)", () => {
    expect(decode({ "x-tenant-id": Buffer.from("acme-eu", "utf8"), "x-event-type": Buffer.from("order.created", "utf8") })).toEqual(
      ok("acme-eu", "order.created"),
    );
    const r = decode({ "x-tenant-id": Buffer.from("société", "utf8"), "x-event-type": "commande.créée" });
    expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
    if (!r.ok)
      expect(r.detail).toBe("header x-tenant-id contains a non-ASCII character (only printable ASCII can be sent in an HTTP header)");
  });

  it("reads configured header names instead of the defaults", () => {
    const names = { tenant: "org", eventType: "kind", eventId: "eid" };
    expect(decode({ org: "acme", kind: "order.created" }, names)).toEqual(ok("acme", "order.created"));
    // The defaults are then just other headers.
    const r = decode({ "x-tenant-id": "acme", "x-event-type": "order.created" }, names);
    expect(r).toMatchObject({ ok: false, reason: "missing_tenant" });
  });

  it("matches record header names case-insensitively", () => {
    expect(decode({ "X-Tenant-Id": "acme", "X-EVENT-TYPE": "order.created" })).toEqual(ok("acme", "order.created"));
    expect(decode({ ORG: "acme", Kind: "e" }, { tenant: "org", eventType: "kind", eventId: "eid" })).toEqual(ok("acme", "e"));
    expect(decode({ CE_TENANTID: "acme", Ce_Type: "e" })).toEqual(ok("acme", "e"));
  });

  it("treats the same header under two spellings as a repeat", () => {
    expect(decode({ "X-Tenant-Id": "acme", "x-tenant-id": "acme", "x-event-type": "e" })).toEqual(ok("acme", "e"));
    expect(decode({ "X-Tenant-Id": "acme", "x-tenant-id": "evil", "x-event-type": "e" })).toMatchObject({
      ok: false,
      reason: "invalid_header",
    });
  });

  describe("the producer's event id", () => {
    it("is read from the event-id header, else ce_id, and is optional", () => {
      const h = { "x-tenant-id": "acme", "x-event-type": "e" };
      expect(decode(h)).toEqual(ok("acme", "e"));
      expect(decode({ ...h, ce_id: "ce-1" })).toEqual(ok("acme", "e", "ce-1"));
      expect(decode({ ...h, ce_id: "ce-1", "X-Event-Id": "ours-1" })).toEqual(ok("acme", "e", "ours-1"));
    });

    it("is refused like the tenant when it cannot be a header value", () => {
      expect(decode({ "x-tenant-id": "acme", "x-event-type": "e", "x-event-id": "a\u0000b" })).toMatchObject({
        ok: false,
        reason: "invalid_header",
      });
    });
  });

  describe("CloudEvents binary-mode fallback", () => {
    it("names the CloudEvents headers", () => {
      expect(CLOUDEVENTS_HEADERS).toEqual({ tenant: "ce_tenantid", eventType: "ce_type", eventId: "ce_id" });
    });

    it("is used when ours are absent", () => {
      expect(decode({ ce_tenantid: "acme", ce_type: "order.created" })).toEqual(ok("acme", "order.created"));
      expect(decode({ "x-tenant-id": "acme", ce_type: "order.created" })).toEqual(ok("acme", "order.created"));
      expect(decode({ ce_tenantid: Buffer.from("acme"), "x-event-type": "order.created" })).toEqual(ok("acme", "order.created"));
    });

    it("is also used with configured names", () => {
      expect(decode({ ce_tenantid: "acme", ce_type: "e" }, { tenant: "org", eventType: "kind", eventId: "eid" })).toEqual(ok("acme", "e"));
    });

    it("never wins over ours", () => {
      expect(decode({ "x-tenant-id": "acme", "x-event-type": "ours", ce_tenantid: "other", ce_type: "theirs" })).toEqual(
        ok("acme", "ours"),
      );
    });

    it("treats an empty or blank header of ours as absent", () => {
      expect(decode({ "x-tenant-id": "", ce_tenantid: "acme", "x-event-type": "  ", ce_type: "e" })).toEqual(ok("acme", "e"));
    });

    it("is not used when ours is present but invalid", () => {
      const r = decode({ "x-tenant-id": Buffer.from([0xff, 0xfe]), ce_tenantid: "acme", "x-event-type": "e" });
      expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
      const r2 = decode({ "x-tenant-id": "acme", "x-event-type": "a\r\nb", ce_type: "e" });
      expect(r2).toMatchObject({ ok: false, reason: "invalid_header" });
    });
  });

  describe("missing", () => {
    it("no headers at all", () => {
      expect(decode(undefined)).toMatchObject({ ok: false, reason: "missing_tenant" });
      expect(decode({})).toMatchObject({ ok: false, reason: "missing_tenant" });
    });

    it("names the header in the detail", () => {
      const r = decode({ "x-event-type": "e" });
      expect(r).toMatchObject({ ok: false, reason: "missing_tenant" });
      if (!r.ok) {
        expect(r.detail).toContain("x-tenant-id");
        expect(r.detail).toContain("ce_tenantid");
      }
      const r2 = decode({ "x-tenant-id": "acme" });
      expect(r2).toMatchObject({ ok: false, reason: "missing_event_type" });
      if (!r2.ok) {
        expect(r2.detail).toContain("x-event-type");
        expect(r2.detail).toContain("ce_type");
      }
    });

    it.each([
      ["empty string", ""],
      ["whitespace", "   "],
      ["tab and spaces", " \t "],
      ["empty buffer", Buffer.alloc(0)],
      ["blank buffer", Buffer.from("  ")],
      ["undefined", undefined],
      ["empty array", []],
    ])("%s counts as missing", (_what, value) => {
      expect(decode({ "x-tenant-id": value, "x-event-type": "e" })).toMatchObject({ ok: false, reason: "missing_tenant" });
      expect(decode({ "x-tenant-id": "acme", "x-event-type": value })).toMatchObject({ ok: false, reason: "missing_event_type" });
    });

    it("checks the tenant before the event type", () => {
      expect(decode({ other: "x" })).toMatchObject({ ok: false, reason: "missing_tenant" });
    });
  });

  describe("repeated headers (arrays)", () => {
    it("accept the same value repeated", () => {
      expect(decode({ "x-tenant-id": ["acme", Buffer.from("acme")], "x-event-type": [Buffer.from("e"), Buffer.from("e")] })).toEqual(
        ok("acme", "e"),
      );
    });

    it("accept a one-element array", () => {
      expect(decode({ "x-tenant-id": [Buffer.from("acme")], "x-event-type": ["e"] })).toEqual(ok("acme", "e"));
    });

    it("reject different values", () => {
      const r = decode({ "x-tenant-id": ["acme", "globex"], "x-event-type": "e" });
      expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
      if (!r.ok) expect(r.detail).toContain("x-tenant-id");
      expect(decode({ "x-tenant-id": "acme", "x-event-type": [Buffer.from("a"), Buffer.from("b")] })).toMatchObject({
        ok: false,
        reason: "invalid_header",
      });
    });
  });

  describe("invalid values", () => {
    it("rejects invalid UTF-8", () => {
      const r = decode({ "x-tenant-id": Buffer.from([0x61, 0xc3, 0x28]), "x-event-type": "e" });
      expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
      if (!r.ok) expect(r.detail).toMatch(/x-tenant-id.*UTF-8/);
      expect(decode({ "x-tenant-id": "acme", "x-event-type": Buffer.from([0xff]) })).toMatchObject({ ok: false, reason: "invalid_header" });
      // An overlong encoding of "/" is not UTF-8 either.
      expect(decode({ "x-tenant-id": Buffer.from([0xc0, 0xaf]), "x-event-type": "e" })).toMatchObject({
        ok: false,
        reason: "invalid_header",
      });
    });

    it("accepts 256 characters and rejects 257", () => {
      expect(decode({ "x-tenant-id": "a".repeat(256), "x-event-type": "e" })).toEqual(ok("a".repeat(256), "e"));
      const r = decode({ "x-tenant-id": "a".repeat(257), "x-event-type": "e" });
      expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
      if (!r.ok) expect(r.detail).toContain("longer");
      expect(decode({ "x-tenant-id": "acme", "x-event-type": Buffer.from("e".repeat(10_000)) })).toMatchObject({
        ok: false,
        reason: "invalid_header",
      });
    });

    it.each([
      ["CRLF", "acme\r\nX-Injected: 1"],
      ["LF", "acme\nx"],
      ["CR", "acme\r"],
      ["NUL", "ac\u0000me"],
      ["tab", "ac\tme"],
      ["escape", "ac\u001bme"],
      ["unit separator", "ac\u001fme"],
      ["DEL", "acme\u007f"],
    ])("rejects control characters (%s)", (_what, value) => {
      const r = decode({ "x-tenant-id": value, "x-event-type": "e" });
      expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
      if (!r.ok) expect(r.detail).toContain("control");
      expect(decode({ "x-tenant-id": "acme", "x-event-type": Buffer.from(value) })).toMatchObject({ ok: false, reason: "invalid_header" });
    });

    it.each([
      ["CJK", "注文確定"],
      ["latin1", "commande.créée"],
      ["emoji", "order.\u{1F600}"],
      ["a lone surrogate", "order\ud800"],
      ["non-breaking space", "order\u00a0created"],
    ])("rejects an event type no HTTP header can carry (%s), naming the header", (_what, value) => {
      for (const eventType of [value, Buffer.from(value, "utf8")]) {
        const r = decode({ "x-tenant-id": "acme", "x-event-type": eventType });
        expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
        if (!r.ok) expect(r.detail).toMatch(/^header x-event-type contains a non-ASCII character/);
      }
      expect(decode({ "x-tenant-id": value, "x-event-type": "e" })).toMatchObject({ ok: false, reason: "invalid_header" });
      expect(decode({ ce_tenantid: "acme", ce_type: value })).toMatchObject({ ok: false, reason: "invalid_header" });
    });

    it("rejects a space at either end (receivers would strip it)", () => {
      for (const value of [" acme", "acme "]) {
        const r = decode({ "x-tenant-id": value, "x-event-type": "e" });
        expect(r).toMatchObject({ ok: false, reason: "invalid_header" });
        if (!r.ok) expect(r.detail).toBe("header x-tenant-id starts or ends with a space");
      }
    });

    it("accepts printable punctuation and spaces inside the value", () => {
      expect(decode({ "x-tenant-id": "acme corp/eu-1", "x-event-type": "order.created:v2" })).toEqual(
        ok("acme corp/eu-1", "order.created:v2"),
      );
    });
  });
});
