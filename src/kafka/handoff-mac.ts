import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { firstValue, type RecordHeaders } from "./record-decoder.js";

/*
 * Signed handoff records. A retry record makes the sidecar sign and send its value for the tenant
 * it names; a dead letter is replayed the same way. Anyone who may write those topics could
 * otherwise have any body signed for any tenant. So every retry and delivery dead letter carries
 * a MAC over its kind, its value and every header of ours ("callback-*"), and one whose MAC is
 * missing or wrong is never delivered.
 *
 * Keys, in order: the configured handoff keys (pyfly.callbacks.handoff.keys; the first signs, all
 * verify, so a key is rotated by putting the new one first and dropping the old one after the
 * retry topic has turned over), then a key derived with HKDF-SHA256 from the config's own signing
 * secret under a fixed label. With no handoff key configured the protection is still on: forging
 * a record takes the tenant's secret, which is what forging its webhook signatures takes anyway. A
 * config without a secret derives from its id, which is no secret: its records are protected
 * against corruption, not forgery (its webhooks are unsigned too), until handoff keys are
 * configured, which then replace the id-derived key. Pure: no I/O.
 */

export type HandoffKind = "retry" | "dead-letter";

const LABEL = "callback-sidecar handoff-record v1";
const SCHEME = "v1=";
const OURS = "callback-";

/** The signing key first, then every key that still verifies. */
export function handoffKeys(
  configured: readonly string[],
  config: { id: string; secret: string | null; additional_secrets?: readonly string[] } | undefined,
): Buffer[] {
  const keys = configured.map((k) => Buffer.from(k, "utf8"));
  // The signing secret, then the older ones kept during a rotation: records written before the
  // rotation still verify while they wait. An id is no secret: once real keys are configured, a
  // key derived from one no longer verifies.
  const secrets = config?.secret
    ? [config.secret, ...(config.additional_secrets ?? [])]
    : config && keys.length === 0
      ? [`config-id:${config.id}`]
      : [];
  for (const ikm of secrets) keys.push(Buffer.from(hkdfSync("sha256", Buffer.from(ikm, "utf8"), Buffer.alloc(0), LABEL, 32)));
  return keys;
}

function bytes(value: Buffer | string): Buffer {
  return typeof value === "string" ? Buffer.from(value, "utf8") : value;
}

/** HMAC-SHA256 over the kind, our headers (sorted, length-prefixed) and the value. */
function mac(
  key: Buffer,
  kind: HandoffKind,
  value: Buffer | string,
  headers: RecordHeaders | Record<string, Buffer | string>,
  macHeader: string,
): Buffer {
  const h = createHmac("sha256", key);
  const field = (b: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(b.length);
    h.update(length).update(b);
  };
  field(Buffer.from(LABEL));
  field(Buffer.from(kind));
  const names = Object.keys(headers ?? {})
    .filter((name) => name.startsWith(OURS) && name !== macHeader)
    .sort();
  for (const name of names) {
    const v = firstValue(headers?.[name]);
    if (v === undefined) continue;
    field(Buffer.from(name));
    field(bytes(v));
  }
  field(bytes(value));
  return h.digest();
}

/** The header value that seals a record under `key`. */
export function sealValue(
  key: Buffer,
  kind: HandoffKind,
  value: Buffer | string,
  headers: Record<string, Buffer | string>,
  macHeader: string,
): string {
  return SCHEME + mac(key, kind, value, headers, macHeader).toString("base64");
}

/** True when the record's MAC verifies under one of `keys`. */
export function verifySeal(
  keys: readonly Buffer[],
  kind: HandoffKind,
  value: Buffer | string,
  headers: RecordHeaders,
  macHeader: string,
): boolean {
  const raw = firstValue(headers?.[macHeader]);
  const text = raw === undefined ? "" : raw.toString();
  if (!text.startsWith(SCHEME)) return false;
  const given = Buffer.from(text.slice(SCHEME.length), "base64");
  if (given.length !== 32) return false;
  return keys.some((key) => timingSafeEqual(mac(key, kind, value, headers, macHeader), given));
}
