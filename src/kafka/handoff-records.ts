import type { EventSource } from "../domain/models.js";
import type { RecordHeaders } from "./record-decoder.js";

/*
 * The records this sidecar writes to its own topics. The value is the payload (for a delivery, the
 * canonical body that is signed and sent); the original record's headers are carried over, and
 * ours, prefixed "callback-", say what is needed to try again or to understand a dead letter.
 */

export const H = {
  deliveryId: "callback-delivery-id",
  executionId: "callback-execution-id",
  configId: "callback-config-id",
  tenantId: "callback-tenant-id",
  eventType: "callback-event-type",
  subscriptionEventType: "callback-subscription-event-type",
  targetUrl: "callback-target-url",
  attempts: "callback-attempts",
  dueAt: "callback-due-at",
  createdAt: "callback-created-at",
  occurredAt: "callback-occurred-at",
  lastError: "callback-last-error",
  responseStatus: "callback-response-status",
  status: "callback-status",
  reason: "callback-reason",
  source: "callback-source",
  deadLetteredAt: "callback-dead-lettered-at",
} as const;

const OURS = new Set<string>(Object.values(H));

export interface OutboundRecord {
  key: Buffer | string | null;
  value: Buffer | string;
  headers: Record<string, Buffer | string>;
}

/** What a retry or a delivery dead letter says about the delivery. */
export interface DeliveryHandoff {
  deliveryId: string;
  executionId: string;
  configId: string;
  tenantId: string;
  eventType: string;
  subscriptionEventType: string;
  targetUrl: string;
  attempts: number;
  createdAt: string;
  occurredAt: number;
  lastError: string | null;
  responseStatus: number | null;
  source: EventSource | null;
}

/** Header values as Kafka hands them: the first value, as text. */
export function headerText(headers: RecordHeaders, name: string): string | undefined {
  const raw = headers?.[name];
  const first = Array.isArray(raw) ? raw[0] : raw;
  return first === undefined ? undefined : first.toString();
}

/** The original record's headers, without any of ours (a retried retry carries fresh ones). */
export function carriedHeaders(headers: RecordHeaders): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined || OURS.has(name)) continue;
    // kafkajs gives repeated headers as arrays; one value survives, which is all the contract reads.
    out[name] = Array.isArray(value) ? (value[0] as Buffer | string) : value;
  }
  return out;
}

function handoffHeaders(h: DeliveryHandoff): Record<string, string> {
  const out: Record<string, string> = {
    [H.deliveryId]: h.deliveryId,
    [H.executionId]: h.executionId,
    [H.configId]: h.configId,
    [H.tenantId]: h.tenantId,
    [H.eventType]: h.eventType,
    [H.subscriptionEventType]: h.subscriptionEventType,
    [H.targetUrl]: h.targetUrl,
    [H.attempts]: String(h.attempts),
    [H.createdAt]: h.createdAt,
    [H.occurredAt]: String(h.occurredAt),
  };
  if (h.lastError !== null) out[H.lastError] = h.lastError;
  if (h.responseStatus !== null) out[H.responseStatus] = String(h.responseStatus);
  if (h.source !== null) out[H.source] = JSON.stringify(h.source);
  return out;
}

export function retryRecord(h: DeliveryHandoff, body: string, dueAt: number, original: RecordHeaders, key: Buffer | string | null): OutboundRecord {
  return {
    key: key ?? h.deliveryId,
    value: body,
    headers: { ...carriedHeaders(original), ...handoffHeaders(h), [H.dueAt]: String(dueAt) },
  };
}

export function deliveryDeadLetter(
  h: DeliveryHandoff,
  body: string,
  reason: string,
  original: RecordHeaders,
  key: Buffer | string | null,
  now: number,
): OutboundRecord {
  return {
    key: key ?? h.deliveryId,
    value: body,
    headers: { ...carriedHeaders(original), ...handoffHeaders(h), [H.status]: "FAILED", [H.reason]: reason, [H.deadLetteredAt]: String(now) },
  };
}

/** A record that could not be dispatched at all: its bytes and headers as they came, and why. */
export function undispatchableDeadLetter(
  value: Buffer | null,
  original: RecordHeaders,
  key: Buffer | string | null,
  source: EventSource,
  reason: string,
  detail: string,
  now: number,
): OutboundRecord {
  return {
    key,
    value: value ?? Buffer.alloc(0),
    headers: {
      ...carriedHeaders(original),
      [H.status]: "UNDISPATCHABLE",
      [H.reason]: reason,
      [H.lastError]: detail,
      [H.source]: JSON.stringify(source),
      [H.deadLetteredAt]: String(now),
    },
  };
}

export class HandoffFormatError extends Error {}

/** Reads a retry or delivery dead letter back; throws HandoffFormatError naming the bad header. */
export function readDeliveryHandoff(headers: RecordHeaders): DeliveryHandoff & { dueAt: number | null } {
  const need = (name: string): string => {
    const v = headerText(headers, name);
    if (v === undefined || v === "") throw new HandoffFormatError(`missing header ${name}`);
    return v;
  };
  const num = (name: string, text: string | undefined): number | null => {
    if (text === undefined) return null;
    if (!/^\d+$/.test(text)) throw new HandoffFormatError(`header ${name} is not a non-negative integer`);
    return Number(text);
  };
  const sourceText = headerText(headers, H.source);
  let source: EventSource | null = null;
  if (sourceText !== undefined) {
    try {
      source = JSON.parse(sourceText) as EventSource;
    } catch {
      throw new HandoffFormatError(`header ${H.source} is not JSON`);
    }
  }
  return {
    deliveryId: need(H.deliveryId),
    executionId: need(H.executionId),
    configId: need(H.configId),
    tenantId: need(H.tenantId),
    eventType: need(H.eventType),
    subscriptionEventType: need(H.subscriptionEventType),
    targetUrl: need(H.targetUrl),
    attempts: num(H.attempts, need(H.attempts)) as number,
    createdAt: need(H.createdAt),
    occurredAt: num(H.occurredAt, headerText(headers, H.occurredAt)) ?? Date.now(),
    lastError: headerText(headers, H.lastError) ?? null,
    responseStatus: num(H.responseStatus, headerText(headers, H.responseStatus)),
    source,
    dueAt: num(H.dueAt, headerText(headers, H.dueAt)),
  };
}
