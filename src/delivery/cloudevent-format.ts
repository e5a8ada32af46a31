/*
 * The CloudEvents HTTP protocol binding on the way out, per subscription (`format`):
 * - `cloudevents-binary`: the body is the event's data (the same bytes as the pyfly format), and
 *   every context attribute is a `ce-<name>` header;
 * - `cloudevents-structured`: the body is the whole event as one JSON envelope
 *   (`application/cloudevents+json`), in the canonical form, `data` kept byte for byte.
 * The signature covers the exact body sent, whatever the format. Pure.
 *
 * The context: the producer's own attributes when it sent a CloudEvent (binary or structured),
 * else built from the record: `id` the producer's event id or the delivery id (stable across
 * attempts), `source` /kafka/<topic>, `type` the event type, `time` the record's timestamp, and
 * the tenant as the `tenantid` extension.
 */
import { compareCodePoints } from "../shared/code-points.js";
import { canonicalizeJson } from "./canonical-json.js";
import type { PreparedEvent } from "./prepared-event.js";

export const DELIVERY_FORMATS = ["pyfly", "cloudevents-binary", "cloudevents-structured"] as const;
export type DeliveryFormat = (typeof DELIVERY_FORMATS)[number];

export const STRUCTURED_CONTENT_TYPE = "application/cloudevents+json";

/** The context attributes of the event as it leaves, `data` aside. */
export function cloudEventContext(event: PreparedEvent, deliveryId: string): Record<string, unknown> {
  const own = event.cloudEvent ?? {};
  const context: Record<string, unknown> = {
    ...own,
    specversion: "1.0",
    id: typeof own.id === "string" && own.id !== "" ? own.id : (event.eventId ?? deliveryId),
    source: typeof own.source === "string" && own.source !== "" ? own.source : `/kafka/${event.source?.topic ?? "send"}`,
    type: event.eventType,
    tenantid: event.tenantId,
    datacontenttype: "application/json",
  };
  if (typeof context.time !== "string") context.time = new Date(event.occurredAt).toISOString();
  return context;
}

/** The body and the CloudEvents headers of one request in `format` (none for pyfly's). */
export function formatRequest(
  format: DeliveryFormat,
  event: PreparedEvent,
  deliveryId: string,
): { body: string; headers: Record<string, string> } {
  if (format === "pyfly") return { body: event.body, headers: {} };
  const context = cloudEventContext(event, deliveryId);
  if (format === "cloudevents-structured") {
    const members = Object.entries(context).map(([name, value]) => [name, canonicalizeJson(JSON.stringify(value))] as const);
    members.push(["data", event.body]);
    members.sort(([a], [b]) => compareCodePoints(a, b));
    const body = `{${members.map(([name, json]) => `${canonicalizeJson(JSON.stringify(name))}:${json}`).join(",")}}`;
    return { body, headers: { "Content-Type": STRUCTURED_CONTENT_TYPE } };
  }
  const headers: Record<string, string> = { "Content-Type": String(context.datacontenttype) };
  for (const [name, value] of Object.entries(context)) {
    if (name === "datacontenttype") continue;
    headers[`ce-${name}`] = percentEncode(String(value));
  }
  return { body: event.body, headers };
}

/**
 * The binding's header value rule (HTTP binding 3.1.3.2): printable ASCII except space-free
 * edges, `"` and `%`, as is; everything else as UTF-8 percent-encoding.
 */
function percentEncode(value: string): string {
  let out = "";
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (code > 0x20 && code < 0x7f && ch !== '"' && ch !== "%") out += ch;
    else if (ch === " ") out += " ";
    else for (const byte of Buffer.from(ch, "utf8")) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out.replace(/^ +| +$/g, (spaces) => "%20".repeat(spaces.length));
}
