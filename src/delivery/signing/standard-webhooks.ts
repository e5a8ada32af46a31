/**
 * Standard Webhooks (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256(key,
 * "{id}.{timestamp}.{body}")>`, one `v1,` entry per secret, space separated, so a receiver that
 * knows any one of the rotated secrets accepts the message.
 *
 * Secrets are `whsec_<base64>`; without the prefix the whole string is the base64 key, as in the
 * reference libraries. Python's `standardwebhooks` decodes leniently (drops characters outside the
 * alphabet, tolerates missing padding), so a secret like "my-secret" would silently become another
 * key there; here only standard base64, padded or not, is accepted, which decodes to the same
 * bytes in both, and anything else is an error.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { SidecarError } from "../../shared/errors.js";

export const WEBHOOK_ID_HEADER = "webhook-id";
export const WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp";
export const WEBHOOK_SIGNATURE_HEADER = "webhook-signature";
export const DEFAULT_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = "whsec_";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/** Returns why `secret` can't be a Standard Webhooks secret, or undefined when it can. */
export function standardWebhookSecretProblem(secret: string): string | undefined {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (b64 === "") return "the secret is empty";
  if (!BASE64.test(b64)) return 'the secret must be "whsec_" followed by standard base64 (A-Z a-z 0-9 + /)';
  return undefined;
}

/** The key sizes the Standard Webhooks specification allows (24 to 64 bytes once decoded). */
export const STANDARD_WEBHOOK_KEY_BYTES = { min: 24, max: 64 } as const;

/**
 * Why a well-formed secret's key has the wrong size, or undefined. Separate from the format check
 * because signing and verifying (and the `sign`/`verify` commands, which receivers use to debug)
 * work with any key; only the configuration insists on what the specification requires.
 */
export function standardWebhookKeyLengthProblem(secret: string): string | undefined {
  if (standardWebhookSecretProblem(secret) !== undefined) return undefined;
  const bytes = decodeStandardWebhookSecret(secret).length;
  const { min, max } = STANDARD_WEBHOOK_KEY_BYTES;
  if (bytes < min)
    return `the key is shorter than ${min} bytes once base64-decoded; Standard Webhooks requires ${min} to ${max} random bytes`;
  if (bytes > max)
    return `the key is longer than ${max} bytes once base64-decoded; Standard Webhooks requires ${min} to ${max} random bytes`;
  return undefined;
}

export function decodeStandardWebhookSecret(secret: string): Buffer {
  const problem = standardWebhookSecretProblem(secret);
  if (problem) throw new SidecarError("SIGNING_INPUT_INVALID", `Invalid Standard Webhooks secret: ${problem}`);
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");
}

function mac(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** One `v1,<base64>` entry per secret, space separated. `timestamp` is unix seconds. */
export function standardWebhookSignature(secrets: readonly string[], id: string, timestamp: number, body: string | Uint8Array): string {
  if (secrets.length === 0) throw new SidecarError("SIGNING_INPUT_INVALID", "Standard Webhooks signing needs at least one secret");
  if (!id) throw new SidecarError("SIGNING_INPUT_INVALID", "Standard Webhooks signing needs a non-empty message id");
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw new SidecarError("SIGNING_INPUT_INVALID", `Invalid webhook timestamp: ${timestamp}`);
  const ts = String(timestamp);
  return secrets.map((s) => "v1," + mac(decodeStandardWebhookSecret(s), id, ts, body).toString("base64")).join(" ");
}

export function standardWebhookHeaders(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Record<string, string> {
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: standardWebhookSignature(secrets, id, timestamp, body),
  };
}

export type WebhookVerification =
  | { ok: true }
  | { ok: false; reason: "missing-headers" | "invalid-timestamp" | "timestamp-too-old" | "timestamp-too-new" | "no-matching-signature" };

export interface VerifyOptions {
  toleranceSeconds?: number;
  /** Current time in unix seconds (default: the clock). */
  now?: number;
}

/**
 * Receiver side, as the reference verifiers: headers looked up case-insensitively, the timestamp
 * within ±tolerance, and any `v1` entry matching any of `secrets`. Stricter than the Python
 * package in one way: the timestamp must be whole seconds (Python also takes "1700000000.5"
 * and then signs its floor).
 */
export function verifyStandardWebhook(
  secrets: string | readonly string[],
  headers: Record<string, string | readonly string[] | undefined>,
  body: string | Uint8Array,
  { toleranceSeconds = DEFAULT_TOLERANCE_SECONDS, now = Date.now() / 1000 }: VerifyOptions = {},
): WebhookVerification {
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) lower.set(k.toLowerCase(), typeof v === "string" ? v : v.join(" "));
  }
  const id = lower.get(WEBHOOK_ID_HEADER);
  const ts = lower.get(WEBHOOK_TIMESTAMP_HEADER);
  const sig = lower.get(WEBHOOK_SIGNATURE_HEADER);
  if (!id || !ts || !sig) return { ok: false, reason: "missing-headers" };
  if (!/^\d{1,15}$/.test(ts)) return { ok: false, reason: "invalid-timestamp" };
  const t = Number(ts);
  if (t < now - toleranceSeconds) return { ok: false, reason: "timestamp-too-old" };
  if (t > now + toleranceSeconds) return { ok: false, reason: "timestamp-too-new" };
  const given = sig
    .split(" ")
    .map((entry) => entry.split(","))
    .filter((parts) => parts.length === 2 && parts[0] === "v1")
    .map((parts) => Buffer.from(parts[1]!, "base64"));
  for (const secret of typeof secrets === "string" ? [secrets] : secrets) {
    const expected = mac(decodeStandardWebhookSecret(secret), id, ts, body);
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) return { ok: true };
  }
  return { ok: false, reason: "no-matching-signature" };
}
