import { describe, expect, it } from "vitest";
import { formatRequest } from "../../src/delivery/cloudevent-format.js";
import { prepareEvent } from "../../src/delivery/prepared-event.js";

const T = Date.UTC(2026, 11, 4, 12, 0, 0);
const source = { topic: "orders", partition: 0, offset: "7" };
const plain = prepareEvent("acme", "OrderPlaced", '{"z":1,"amount":12345678901234567890}', source, T);
const fromProducer = prepareEvent("acme", "OrderPlaced", '{"a":"é"}', source, T, "evt-1", {
  specversion: "1.0",
  id: "evt-1",
  source: "/orders-service",
  type: "OrderPlaced",
  subject: "order 1 ünïcode",
  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
});

describe("formatRequest", () => {
  it("pyfly: the event's body and no extra header", () => {
    expect(formatRequest("pyfly", plain, "d-1")).toEqual({ body: plain.body, headers: {} });
  });

  it("cloudevents-binary: the same body; ce- headers from the record when the producer gave none (id: the delivery id)", () => {
    const { body, headers } = formatRequest("cloudevents-binary", plain, "d-1");
    expect(body).toBe('{"amount":12345678901234567890,"z":1}');
    expect(headers).toEqual({
      "Content-Type": "application/json",
      "ce-specversion": "1.0",
      "ce-id": "d-1",
      "ce-source": "/kafka/orders",
      "ce-type": "OrderPlaced",
      "ce-tenantid": "acme",
      "ce-time": "2026-12-04T12:00:00.000Z",
    });
  });

  it("cloudevents-binary: the producer's attributes are kept; values no header can carry are percent-encoded", () => {
    const { headers } = formatRequest("cloudevents-binary", fromProducer, "d-1");
    expect(headers["ce-id"]).toBe("evt-1");
    expect(headers["ce-source"]).toBe("/orders-service");
    expect(headers["ce-subject"]).toBe("order 1 %C3%BCn%C3%AFcode");
    expect(headers["ce-traceparent"]).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  });

  it("cloudevents-structured: one canonical envelope, data byte for byte, the tenant as an extension", () => {
    const { body, headers } = formatRequest("cloudevents-structured", plain, "d-1");
    expect(headers).toEqual({ "Content-Type": "application/cloudevents+json" });
    expect(body).toBe(
      '{"data":{"amount":12345678901234567890,"z":1},"datacontenttype":"application/json","id":"d-1","source":"/kafka/orders",' +
        '"specversion":"1.0","tenantid":"acme","time":"2026-12-04T12:00:00.000Z","type":"OrderPlaced"}',
    );
    const withProducer = formatRequest("cloudevents-structured", fromProducer, "d-1").body;
    expect(JSON.parse(withProducer)).toMatchObject({ id: "evt-1", subject: "order 1 ünïcode", data: { a: "é" } });
    expect(withProducer).toContain('"subject":"order 1 \\u00fcn\\u00efcode"');
  });
});
