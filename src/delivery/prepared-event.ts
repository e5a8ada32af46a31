import { canonicalizeJson } from "./canonical-json.js";
import type { EventSource } from "../domain/models.js";

/** Everything about one event that every delivery shares, computed once. */
export interface PreparedEvent {
  tenantId: string;
  eventType: string;
  /** The exact bytes that are signed and sent: CPython's json.dumps(..., sort_keys=True) form. */
  body: string;
  /** Kept on executions for observability; null above the size where keeping it costs too much. */
  readonly payload: unknown;
  source: EventSource | null;
  /** When the event happened (the Kafka record timestamp), for the event-latency histogram. */
  occurredAt: number;
  /** The producer's id of the event, when it gave one: delivery ids derive from it (domain/delivery-id.ts). */
  eventId: string | null;
  /** The producer's CloudEvents context attributes, when it sent a CloudEvent (see cloudevent-format.ts). */
  cloudEvent: Record<string, unknown> | null;
}

// Executions live in a bounded in-memory window; a multi-megabyte payload in each would not be.
const MAX_KEPT_PAYLOAD_BYTES = 16 * 1024;

/**
 * Throws CanonicalJsonError (code INVALID_JSON) when the text is not RFC 8259 JSON: NaN, Infinity
 * and overflowing numbers included. The canonical text is then valid JSON, so parsing it back for
 * the execution record cannot throw.
 */
export function prepareEvent(
  tenantId: string,
  eventType: string,
  json: string | Uint8Array,
  source: EventSource | null = null,
  occurredAt: number = Date.now(),
  eventId: string | null = null,
  cloudEvent: Record<string, unknown> | null = null,
): PreparedEvent {
  const body = canonicalizeJson(json, { strict: true });
  let payload: unknown;
  let parsed = false;
  return {
    tenantId,
    eventType,
    body,
    // Parsed only when someone reads it (/executions with payloads, `send`): most events never are.
    get payload() {
      if (!parsed) {
        payload = body.length <= MAX_KEPT_PAYLOAD_BYTES ? JSON.parse(body) : null;
        parsed = true;
      }
      return payload;
    },
    source,
    occurredAt,
    eventId,
    cloudEvent,
  };
}

/** Gives an execution the event's payload without reading it now (see PreparedEvent.payload). */
export function withLazyPayload<T extends { payload: unknown }>(execution: T, event: PreparedEvent): T {
  return Object.defineProperty(execution, "payload", { get: () => event.payload, enumerable: true, configurable: true });
}
