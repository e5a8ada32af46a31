import { describe, expect, it } from "vitest";
import { contentModeOf, readEnvelopes } from "../../src/kafka/cloudevent-envelope.js";

const options: { tenantAttribute: string; fallbackTenant: string | undefined } = { tenantAttribute: "tenantid", fallbackTenant: undefined };
const envelope = (extra: Record<string, unknown> = {}) => ({
  specversion: "1.0",
  id: "evt-1",
  source: "/orders",
  type: "OrderPlaced",
  tenantid: "acme",
  datacontenttype: "application/json",
  ...extra,
});
const read = (value: unknown, mode: "structured" | "batch" = "structured", o = options) =>
  readEnvelopes(Buffer.from(typeof value === "string" ? value : JSON.stringify(value)), mode, o);

describe("contentModeOf", () => {
  it.each([
    [{ "content-type": "application/cloudevents+json" }, "structured"],
    [{ "Content-Type": "Application/CloudEvents+JSON; charset=utf-8" }, "structured"],
    [{ "content-type": Buffer.from("application/cloudevents-batch+json") }, "batch"],
    [{ "content-type": "application/json" }, "binary"],
    [{}, "binary"],
    [undefined, "binary"],
  ] as const)("%j is %s", (headers, mode) => {
    expect(contentModeOf(headers)).toBe(mode);
  });
});

describe("readEnvelopes", () => {
  it("reads type, tenant, id and data; the body is data's canonical text (pyfly's form), 20-digit integers exact", () => {
    const text = `{"specversion":"1.0","id":"evt-1","source":"/orders","type":"OrderPlaced","tenantid":"acme","data":{"z":1,"amount":12345678901234567890,"a":"é"},"traceparent":"00-abc-def-01"}`;
    expect(read(text)).toEqual({
      ok: true,
      events: [
        {
          tenantId: "acme",
          eventType: "OrderPlaced",
          eventId: "evt-1",
          data: '{"a":"\\u00e9","amount":12345678901234567890,"z":1}',
          attributes: { id: "evt-1", source: "/orders", specversion: "1.0", traceparent: "00-abc-def-01", type: "OrderPlaced" },
        },
      ],
    });
  });

  it("decodes data_base64 when it holds JSON, and has null data when there is none", () => {
    const data_base64 = Buffer.from('{"b":2,"a":1}').toString("base64");
    expect(read(envelope({ data_base64 }))).toMatchObject({ ok: true, events: [{ data: '{"a":1,"b":2}' }] });
    expect(read(envelope())).toMatchObject({ ok: true, events: [{ data: "null" }] });
  });

  it("takes the tenant from a configured attribute, else the record's tenant header", () => {
    expect(
      read(envelope({ tenantid: undefined, org: "globex" }), "structured", { tenantAttribute: "org", fallbackTenant: undefined }),
    ).toMatchObject({
      ok: true,
      events: [{ tenantId: "globex" }],
    });
    expect(read(envelope({ tenantid: undefined }), "structured", { ...options, fallbackTenant: "dapr-tenant" })).toMatchObject({
      ok: true,
      events: [{ tenantId: "dapr-tenant" }],
    });
  });

  it("fans a batch out into its events", () => {
    const batch = [envelope({ id: "a", data: 1 }), envelope({ id: "b", tenantid: "globex", data: [2] })];
    const r = read(batch, "batch");
    expect(r.ok && r.events.map((e) => [e.eventId, e.tenantId, e.data])).toEqual([
      ["a", "acme", "1"],
      ["b", "globex", "[2]"],
    ]);
  });

  it.each([
    ["not JSON", "{nope", "the envelope is not JSON"],
    ["an array in structured mode", [], "the envelope is not a JSON object"],
    ["another specversion", envelope({ specversion: "0.3" }), 'attribute specversion: expected "1.0"'],
    ["no type", envelope({ type: undefined }), "attribute type: missing or not a non-empty string"],
    ["a numeric id", envelope({ id: 7 }), "attribute id: missing or not a non-empty string"],
    ["no source", envelope({ source: "" }), "attribute source: missing or not a non-empty string"],
    ["no tenant", envelope({ tenantid: undefined }), "attribute tenantid: missing (and no tenant header), or not a string"],
    ["a type no header can carry", envelope({ type: "注文" }), "attribute type: "],
    ["both data forms", envelope({ data: 1, data_base64: "MQ==" }), "attributes data and data_base64: only one may be present"],
    [
      "data_base64 not JSON",
      envelope({ data_base64: Buffer.from("plain text").toString("base64") }),
      "attribute data_base64: not JSON once decoded",
    ],
  ])("%s is refused, naming the attribute", (_, value, detail) => {
    const r = read(value);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.detail).toContain(detail);
  });

  it("names the event's index in a batch, and refuses an empty one", () => {
    expect(read([envelope(), envelope({ type: 3 })], "batch")).toEqual({
      ok: false,
      detail: "event [1]: attribute type: missing or not a non-empty string",
    });
    expect(read([], "batch")).toEqual({ ok: false, detail: "the batch is empty" });
    expect(read(envelope(), "batch")).toEqual({ ok: false, detail: "a batch is not a JSON array" });
  });
});
