import { canonicalizeJson } from "./canonical-json.js";
import type { EventSource } from "../domain/models.js";

/** Everything about one event that every delivery shares, computed once. */
export interface PreparedEvent {
  tenantId: string;
  eventType: string;
  /** The exact bytes that are signed and sent: CPython's json.dumps(..., sort_keys=True) form. */
  body: string;
  /** Kept on executions for observability; null above the size where keeping it costs too much. */
  payload: unknown;
  source: EventSource | null;
  /** When the event happened (the Kafka record timestamp), for the event-latency histogram. */
  occurredAt: number;
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
): PreparedEvent {
  const body = canonicalizeJson(json, { strict: true });
  const payload = body.length <= MAX_KEPT_PAYLOAD_BYTES ? JSON.parse(body) : null;
  return { tenantId, eventType, body, payload, source, occurredAt };
}
