import { createHash } from "node:crypto";
import type { EventSource } from "../domain/models.js";
import { SidecarError } from "../shared/errors.js";
import { prepareEvent, type PreparedEvent } from "../delivery/prepared-event.js";
import { sealValue, verifySeal, type HandoffKind } from "./handoff-mac.js";
import { firstValue, type RecordHeaders } from "./record-decoder.js";

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
  /** The subscription's fingerprint: finds it again in the configuration (the URL may be a credential). */
  subscription: "callback-subscription",
  /** The target URL redacted, for people: scheme and host only. */
  target: "callback-target",
  attempts: "callback-attempts",
  dueAt: "callback-due-at",
  /** "1": the due time is a rate-limit slot reserved for this delivery; it goes then without asking again. */
  slotReserved: "callback-slot-reserved",
  /** The producer's event id, so a retry's CloudEvents id is the first attempt's. */
  eventId: "callback-event-id",
  /** The producer's CloudEvents context attributes (JSON), for the CloudEvents formats' retries. */
  cloudEvent: "callback-cloudevent",
  createdAt: "callback-created-at",
  occurredAt: "callback-occurred-at",
  lastError: "callback-last-error",
  responseStatus: "callback-response-status",
  status: "callback-status",
  reason: "callback-reason",
  source: "callback-source",
  deadLetteredAt: "callback-dead-lettered-at",
  valueTruncated: "callback-value-truncated",
  keyHashed: "callback-key-hashed",
  headersDropped: "callback-headers-dropped",
  origin: "callback-origin",
  mac: "callback-mac",
} as const;

const OUR_PREFIX = "callback-";

/*
 * Kafka refuses records above message.max.bytes (about 1 MB by default), and a refused write would
 * hold its record's offset forever. What we write stays under that: carried headers are capped,
 * and a dead letter's value is cut (its source coordinates still point at the original record).
 * A delivery body above the limit never goes to the retry topic (see pipeline/delivery-stage.ts).
 */
export const MAX_HANDOFF_VALUE_BYTES = 900 * 1024;
const MAX_CARRIED_HEADER_BYTES = 8 * 1024;
const MAX_KEY_BYTES = 1024;
const MAX_ERROR_CHARS = 1024;
const MAX_CARRIED_HEADERS_TOTAL_BYTES = 64 * 1024;

/**
 * A key as long as the record it belongs to would cost the producer seconds to hash (kafkajs'
 * murmur2 is super-linear in its length) and could push the record over the broker's limit: a long
 * key is replaced by its SHA-256, which keeps "same key, same partition" for the records we write.
 */
function boundedKey(key: Buffer | string | null): { key: Buffer | string | null; headers: Record<string, string> } {
  if (key === null || Buffer.byteLength(key) <= MAX_KEY_BYTES) return { key, headers: {} };
  return { key: createHash("sha256").update(key).digest("hex"), headers: { [H.keyHashed]: String(Buffer.byteLength(key)) } };
}

const boundedError = (text: string) => (text.length <= MAX_ERROR_CHARS ? text : `${text.slice(0, MAX_ERROR_CHARS)}…`);

/** A dead letter's value, cut to fit; the header says how large the original was. */
function fittedValue(value: Buffer | string): { value: Buffer | string; truncated: Record<string, string> } {
  const size = Buffer.byteLength(value);
  if (size <= MAX_HANDOFF_VALUE_BYTES) return { value, truncated: {} };
  const bytes = typeof value === "string" ? Buffer.from(value) : value;
  return { value: bytes.subarray(0, MAX_HANDOFF_VALUE_BYTES), truncated: { [H.valueTruncated]: String(size) } };
}

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
  subscriptionFingerprint: string;
  /** Redacted: never the full URL, which may carry a token. */
  target: string;
  attempts: number;
  createdAt: string;
  occurredAt: number;
  lastError: string | null;
  responseStatus: number | null;
  source: EventSource | null;
  /** The producer's event id and CloudEvents context, when it gave them (see delivery/cloudevent-format.ts). */
  eventId?: string | undefined;
  cloudEvent?: Record<string, unknown> | undefined;
}

/** Header values as Kafka hands them: the first value, as text. */
export function headerText(headers: RecordHeaders, name: string): string | undefined {
  return firstValue(headers?.[name])?.toString();
}

/** A record's headers as we write them again: one value each (see firstValue). */
export function writableHeaders(headers: RecordHeaders): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const one = firstValue(value);
    if (one !== undefined) out[name] = one;
  }
  return out;
}

/** The original record's headers, without any of ours (a retried retry carries fresh ones). */
export function carriedHeaders(headers: RecordHeaders): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  let total = 0;
  let dropped = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    // Every "callback-" header is ours (and under the MAC): none is carried, not even an old one.
    const one = firstValue(value);
    if (one === undefined || name.startsWith(OUR_PREFIX)) continue;
    const size = Buffer.byteLength(name) + Buffer.byteLength(one);
    if (size > MAX_CARRIED_HEADER_BYTES || total + size > MAX_CARRIED_HEADERS_TOTAL_BYTES) {
      dropped += 1;
      continue;
    }
    total += size;
    out[name] = one;
  }
  if (dropped > 0) out[H.headersDropped] = String(dropped);
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
    [H.subscription]: h.subscriptionFingerprint,
    [H.target]: h.target,
    [H.attempts]: String(h.attempts),
    [H.createdAt]: h.createdAt,
    [H.occurredAt]: String(h.occurredAt),
  };
  if (h.lastError !== null) out[H.lastError] = boundedError(h.lastError);
  if (h.responseStatus !== null) out[H.responseStatus] = String(h.responseStatus);
  if (h.source !== null) out[H.source] = JSON.stringify(h.source);
  if (h.eventId !== undefined) out[H.eventId] = h.eventId;
  if (h.cloudEvent !== undefined) {
    // Bounded like a carried header; beyond it the retry's context falls back to the defaults.
    const json = JSON.stringify(h.cloudEvent);
    if (Buffer.byteLength(json) <= MAX_CARRIED_HEADER_BYTES) out[H.cloudEvent] = json;
  }
  return out;
}

/**
 * `origin` names the deployment (its group id) whose retry consumer may take the record: two
 * deployments pointed at one retry topic then leave each other's records alone.
 */
export function retryRecord(
  h: DeliveryHandoff,
  body: string,
  dueAt: number,
  original: RecordHeaders,
  key: Buffer | string | null,
  origin: string,
  slotReserved = false,
): OutboundRecord {
  const bounded = boundedKey(key ?? h.deliveryId);
  const reserved: Record<string, string> = slotReserved ? { [H.slotReserved]: "1" } : {};
  return {
    key: bounded.key,
    value: body,
    headers: {
      ...carriedHeaders(original),
      ...handoffHeaders(h),
      ...bounded.headers,
      [H.dueAt]: String(dueAt),
      [H.origin]: origin,
      ...reserved,
    },
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
  const fitted = fittedValue(body);
  const bounded = boundedKey(key ?? h.deliveryId);
  return {
    key: bounded.key,
    value: fitted.value,
    headers: {
      ...carriedHeaders(original),
      ...handoffHeaders(h),
      ...fitted.truncated,
      ...bounded.headers,
      [H.status]: "FAILED",
      [H.reason]: reason,
      [H.deadLetteredAt]: String(now),
    },
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
  const fitted = fittedValue(value ?? Buffer.alloc(0));
  const bounded = boundedKey(key);
  return {
    key: bounded.key,
    value: fitted.value,
    headers: {
      ...carriedHeaders(original),
      ...fitted.truncated,
      ...bounded.headers,
      [H.status]: "UNDISPATCHABLE",
      [H.reason]: reason,
      [H.lastError]: boundedError(detail),
      [H.source]: JSON.stringify(source),
      [H.deadLetteredAt]: String(now),
    },
  };
}

/** Adds the MAC that lets a reader trust the record (see handoff-mac.ts). */
export function sealed(record: OutboundRecord, kind: HandoffKind, key: Buffer): OutboundRecord {
  const headers = record.headers;
  return { ...record, headers: { ...headers, [H.mac]: sealValue(key, kind, record.value, headers, H.mac) } };
}

/** Whether a record read back carries a MAC that one of `keys` made. */
export function isSealed(headers: RecordHeaders, value: Buffer | string, kind: HandoffKind, keys: readonly Buffer[]): boolean {
  return verifySeal(keys, kind, value, headers, H.mac);
}

export class HandoffFormatError extends SidecarError {
  constructor(message: string) {
    super("INVALID_HANDOFF_RECORD", message);
  }
}

/** Reads a retry or delivery dead letter back; throws HandoffFormatError naming the bad header. */
export function readDeliveryHandoff(
  headers: RecordHeaders,
): DeliveryHandoff & { dueAt: number | null; origin: string | undefined; slotReserved: boolean } {
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
    subscriptionFingerprint: need(H.subscription),
    target: need(H.target),
    attempts: num(H.attempts, need(H.attempts)) as number,
    createdAt: need(H.createdAt),
    occurredAt: num(H.occurredAt, headerText(headers, H.occurredAt)) ?? Date.now(),
    lastError: headerText(headers, H.lastError) ?? null,
    responseStatus: num(H.responseStatus, headerText(headers, H.responseStatus)),
    source,
    dueAt: num(H.dueAt, headerText(headers, H.dueAt)),
    origin: headerText(headers, H.origin),
    slotReserved: headerText(headers, H.slotReserved) === "1",
    eventId: headerText(headers, H.eventId),
    cloudEvent: cloudEventOf(headerText(headers, H.cloudEvent)),
  };
}

function cloudEventOf(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new HandoffFormatError(`header ${H.cloudEvent} is not JSON`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new HandoffFormatError(`header ${H.cloudEvent} is not an object`);
  return parsed as Record<string, unknown>;
}

/**
 * The event a retry or dead letter carries, as it was first sent: its body, and the producer's
 * event id and CloudEvents context. Throws CanonicalJsonError (INVALID_JSON) for a body that is not
 * strict JSON.
 */
export function eventOfHandoff(handoff: DeliveryHandoff, value: Buffer | null): PreparedEvent {
  return prepareEvent(
    handoff.tenantId,
    handoff.eventType,
    value ?? Buffer.alloc(0),
    handoff.source,
    handoff.occurredAt,
    handoff.eventId ?? null,
    handoff.cloudEvent ?? null,
  );
}
