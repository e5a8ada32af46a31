/*
 * The message contract, as a pure function: the tenant and event type come from headers
 * (x-tenant-id / x-event-type by default, names configurable, matched case-insensitively), with
 * CloudEvents binary-mode headers (ce_tenantid, ce_type) accepted when ours are absent. The value
 * is the JSON payload; it is checked later, when it is canonicalised.
 *
 * Tenant ids and event types are sent on as HTTP header values (X-Pyfly-Tenant-Id,
 * X-Pyfly-Event-Type) and become log fields and metric labels, so they must be valid UTF-8, at
 * most 256 characters, and pass the outgoing header rule of domain/header-rules.ts:
 * printable ASCII (0x20-0x7E) with no space at either end. Anything else (`注文確定`, `société`,
 * control characters) is `invalid_header` here, a record-level outcome, rather than a request that
 * fails at every delivery.
 */

import { headerValueProblem } from "../domain/header-rules.js";

export type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;
export type RecordHeaders = Record<string, HeaderValue> | undefined;

/** kafkajs gives a repeated header as an array; its first value is the one the contract reads. */
export function firstValue(value: HeaderValue): Buffer | string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export type DecodeFailure = "missing_tenant" | "missing_event_type" | "invalid_header" | "invalid_json";

export type DecodedRecord =
  { ok: true; tenantId: string; eventType: string; eventId: string | null } | { ok: false; reason: DecodeFailure; detail: string };

export interface HeaderNames {
  tenant: string;
  eventType: string;
  /** The producer's event id; delivery ids derive from it when present (domain/delivery-id.ts). */
  eventId: string;
}

export const CLOUDEVENTS_HEADERS: HeaderNames = { tenant: "ce_tenantid", eventType: "ce_type", eventId: "ce_id" };
const MAX_HEADER_VALUE_LENGTH = 256;
const utf8 = new TextDecoder("utf-8", { fatal: true });

type HeaderRead = { value: string } | { missing: true } | { invalid: string };

function readHeader(headers: RecordHeaders, name: string): HeaderRead {
  const wanted = name.toLowerCase();
  const values: (Buffer | string)[] = [];
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() !== wanted || value === undefined) continue;
    values.push(...(Array.isArray(value) ? value : [value]));
  }
  if (values.length === 0) return { missing: true };
  let decoded: string[];
  try {
    decoded = values.map((v) => (typeof v === "string" ? v : utf8.decode(v)));
  } catch {
    return { invalid: `header ${name} is not valid UTF-8` };
  }
  const distinct = new Set(decoded);
  if (distinct.size > 1) return { invalid: `header ${name} appears ${values.length} times with different values` };
  const value = decoded[0] as string;
  if (value.trim() === "") return { missing: true };
  const issue = headerValueIssue(value);
  return issue ? { invalid: `header ${name} ${issue}` } : { value };
}

/** Why a tenant, event type or event id cannot be used (it becomes a header value and a label). */
export function headerValueIssue(value: string): string | undefined {
  if (value.length > MAX_HEADER_VALUE_LENGTH) return `is longer than ${MAX_HEADER_VALUE_LENGTH} characters`;
  return headerValueProblem(value);
}

/** Ours first; CloudEvents only when ours is absent (not when it is present but bad). */
function pick(headers: RecordHeaders, ours: string, cloudEvents: string): HeaderRead {
  const read = readHeader(headers, ours);
  return "missing" in read ? readHeader(headers, cloudEvents) : read;
}

export function decodeRecordHeaders(headers: RecordHeaders, names: HeaderNames): DecodedRecord {
  const tenant = pick(headers, names.tenant, CLOUDEVENTS_HEADERS.tenant);
  if ("invalid" in tenant) return { ok: false, reason: "invalid_header", detail: tenant.invalid };
  if ("missing" in tenant)
    return { ok: false, reason: "missing_tenant", detail: `no ${names.tenant} (or ${CLOUDEVENTS_HEADERS.tenant}) header` };
  const eventType = pick(headers, names.eventType, CLOUDEVENTS_HEADERS.eventType);
  if ("invalid" in eventType) return { ok: false, reason: "invalid_header", detail: eventType.invalid };
  if ("missing" in eventType)
    return { ok: false, reason: "missing_event_type", detail: `no ${names.eventType} (or ${CLOUDEVENTS_HEADERS.eventType}) header` };
  // Optional: without one, delivery ids derive from the record's coordinates.
  const eventId = pick(headers, names.eventId, CLOUDEVENTS_HEADERS.eventId);
  if ("invalid" in eventId) return { ok: false, reason: "invalid_header", detail: eventId.invalid };
  return { ok: true, tenantId: tenant.value, eventType: eventType.value, eventId: "missing" in eventId ? null : eventId.value };
}
