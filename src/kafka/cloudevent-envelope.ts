/*
 * CloudEvents structured and batched content modes on Kafka (the Kafka protocol binding, 3.3; what
 * Dapr pub/sub publishes by default): the record's value is one JSON envelope
 * (`application/cloudevents+json`) or an array of them (`application/cloudevents-batch+json`).
 * Pure: the envelope is read losslessly from its canonical text, so `data` keeps every digit of a
 * 20-digit integer, and the body we send is `data`'s canonical text exactly.
 */
import { canonicalizeJson, CanonicalJsonError } from "../delivery/canonical-json.js";
import { firstValue, headerValueIssue, type RecordHeaders } from "./record-decoder.js";

export type ContentMode = "binary" | "structured" | "batch";

/** One event read from an envelope. */
export interface EnvelopeEvent {
  tenantId: string;
  eventType: string;
  eventId: string;
  /** `data` (or decoded `data_base64`) as canonical JSON text: the body. */
  data: string;
  /** Every other context attribute, as read (strings, numbers, booleans). */
  attributes: Record<string, unknown>;
}

export type EnvelopeRead = { ok: true; events: EnvelopeEvent[] } | { ok: false; detail: string };

/** The record's content mode, from its content-type header (any case, parameters allowed). */
export function contentModeOf(headers: RecordHeaders): ContentMode {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() !== "content-type") continue;
    const type = firstValue(value)?.toString().split(";")[0]?.trim().toLowerCase();
    if (type === "application/cloudevents+json") return "structured";
    if (type === "application/cloudevents-batch+json") return "batch";
  }
  return "binary";
}

/**
 * A binary-mode CloudEvent's context attributes (its `ce_` headers, but the tenant's, which the
 * record's tenant says), or null for a record with none.
 */
export function binaryCloudEventOf(headers: RecordHeaders): Record<string, unknown> | null {
  let out: Record<string, unknown> | null = null;
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    const text = firstValue(value)?.toString();
    if (!lower.startsWith("ce_") || lower === "ce_tenantid" || text === undefined) continue;
    (out ??= {})[lower.slice(3)] = text;
  }
  return out;
}

/**
 * Reads the envelope(s) of a structured or batched record. The tenant comes from the extension
 * attribute `tenantAttribute`, else `fallbackTenant` (the record's tenant header, for publishers
 * that set only Kafka metadata). A failure names the attribute (and the event's index in a batch).
 */
export function readEnvelopes(
  value: Buffer | null,
  mode: "structured" | "batch",
  options: { tenantAttribute: string; fallbackTenant: string | undefined },
): EnvelopeRead {
  if (value === null || value.length === 0) return { ok: false, detail: "the record has no value" };
  let text: string;
  try {
    text = canonicalizeJson(value, { strict: true });
  } catch (error) {
    if (error instanceof CanonicalJsonError) return { ok: false, detail: `the envelope is not JSON: ${error.message}` };
    throw error;
  }
  if (mode === "structured") {
    if (text[0] !== "{") return { ok: false, detail: "the envelope is not a JSON object" };
    const read = readEvent(text, options);
    return "detail" in read ? read : { ok: true, events: [read] };
  }
  if (text[0] !== "[") return { ok: false, detail: "a batch is not a JSON array" };
  const events: EnvelopeEvent[] = [];
  for (const [i, element] of elementsOf(text).entries()) {
    if (element[0] !== "{") return { ok: false, detail: `event [${i}]: not a JSON object` };
    const read = readEvent(element, options);
    if ("detail" in read) return { ok: false, detail: `event [${i}]: ${read.detail}` };
    events.push(read);
  }
  if (events.length === 0) return { ok: false, detail: "the batch is empty" };
  return { ok: true, events };
}

const REQUIRED = ["id", "source", "type"] as const;

function readEvent(
  text: string,
  options: { tenantAttribute: string; fallbackTenant: string | undefined },
): EnvelopeEvent | { ok: false; detail: string } {
  const raw = membersOf(text);
  const fail = (detail: string) => ({ ok: false as const, detail });
  const attributes: Record<string, unknown> = {};
  for (const [name, json] of raw) if (name !== "data" && name !== "data_base64") attributes[name] = JSON.parse(json);
  if (attributes.specversion !== "1.0") return fail(`attribute specversion: expected "1.0"`);
  for (const name of REQUIRED) {
    const v = attributes[name];
    if (typeof v !== "string" || v === "") return fail(`attribute ${name}: missing or not a non-empty string`);
  }
  const tenantValue = attributes[options.tenantAttribute] ?? options.fallbackTenant;
  if (typeof tenantValue !== "string" || tenantValue === "")
    return fail(`attribute ${options.tenantAttribute}: missing (and no tenant header), or not a string`);
  for (const [name, v] of [
    ["type", attributes.type],
    ["id", attributes.id],
    [options.tenantAttribute, tenantValue],
  ] as const) {
    const issue = headerValueIssue(v as string);
    if (issue) return fail(`attribute ${name}: ${issue}`);
  }
  let data = raw.get("data");
  const base64 = raw.get("data_base64");
  if (data !== undefined && base64 !== undefined) return fail("attributes data and data_base64: only one may be present");
  if (data === undefined && base64 !== undefined) {
    const encoded: unknown = JSON.parse(base64);
    if (typeof encoded !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return fail("attribute data_base64: not base64");
    try {
      data = canonicalizeJson(Buffer.from(encoded, "base64"), { strict: true });
    } catch (error) {
      if (error instanceof CanonicalJsonError) return fail(`attribute data_base64: not JSON once decoded (${error.message})`);
      throw error;
    }
  }
  delete attributes[options.tenantAttribute];
  return {
    tenantId: tenantValue,
    eventType: attributes.type as string,
    eventId: attributes.id as string,
    data: data ?? "null",
    attributes,
  };
}

/** The members of a canonical JSON object, each value as its canonical text. */
function membersOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 1;
  while (text[i] !== "}") {
    const keyEnd = skipValue(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueEnd = skipValue(text, keyEnd + 1);
    out.set(key, text.slice(keyEnd + 1, valueEnd));
    i = text[valueEnd] === "," ? valueEnd + 1 : valueEnd;
  }
  return out;
}

/** The elements of a canonical JSON array, each as its canonical text. */
function elementsOf(text: string): string[] {
  const out: string[] = [];
  let i = 1;
  while (text[i] !== "]") {
    const end = skipValue(text, i);
    out.push(text.slice(i, end));
    i = text[end] === "," ? end + 1 : end;
  }
  return out;
}

/** Where the value starting at `i` ends, in canonical (compact, valid) JSON text. */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') {
    for (i += 1; text[i] !== '"'; i += text[i] === "\\" ? 2 : 1);
    return i + 1;
  }
  if (c === "{" || c === "[") {
    let depth = 0;
    for (; i < text.length; i++) {
      const ch = text[i];
      if (ch === '"') i = skipValue(text, i) - 1;
      else if (ch === "{" || ch === "[") depth += 1;
      else if ((ch === "}" || ch === "]") && --depth === 0) return i + 1;
    }
    return i;
  }
  while (i < text.length && text[i] !== "," && text[i] !== "}" && text[i] !== "]") i++;
  return i;
}
