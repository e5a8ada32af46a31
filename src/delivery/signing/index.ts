/**
 * The one signing entry point for the dispatcher, over the exact body bytes that are sent.
 *
 * - `pyfly`: depends only on the body, so it can be computed once per (config, event) and reused on
 *   every attempt and every subscription of that config. Only `secrets[0]` is used: a pyfly
 *   receiver compares against exactly one signature, so rotation can't be expressed (config
 *   validation should reject additional secrets for this scheme).
 * - `standard-webhooks`: also signs `deliveryId` and `timestamp`, so it is per delivery. Use a
 *   delivery id that is stable across attempts (receivers dedupe on it) and the attempt's own time
 *   (receivers reject timestamps more than 5 minutes away, and retries can come much later).
 *   Every secret signs, primary first, for rotation.
 * Empty secrets are dropped; with none left no header is produced (pyfly signs only with a secret).
 */
import { PYFLY_SIGNATURE_HEADER, pyflySignature } from "./pyfly.js";
import {
  standardWebhookHeaders,
  standardWebhookSecretProblem,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from "./standard-webhooks.js";

export { PYFLY_SIGNATURE_HEADER, pyflySignature, verifyPyflySignature } from "./pyfly.js";
export {
  DEFAULT_TOLERANCE_SECONDS,
  decodeStandardWebhookSecret,
  standardWebhookHeaders,
  standardWebhookKeyLengthProblem,
  standardWebhookSecretProblem,
  standardWebhookSignature,
  STANDARD_WEBHOOK_KEY_BYTES,
  verifyStandardWebhook,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from "./standard-webhooks.js";
export type { VerifyOptions, WebhookVerification } from "./standard-webhooks.js";

export const SIGNATURE_SCHEMES = ["pyfly", "standard-webhooks"] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

/** Lower-case names of every header the signers set, whatever the scheme. */
export const SIGNATURE_HEADER_NAMES: readonly string[] = [
  PYFLY_SIGNATURE_HEADER.toLowerCase(),
  WEBHOOK_ID_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
];

/** True for a header a subscription must not set (signature headers win, compared case-insensitively). */
export function isSignatureHeader(name: string): boolean {
  return SIGNATURE_HEADER_NAMES.includes(name.toLowerCase());
}

export interface SignatureRequest {
  scheme: SignatureScheme;
  secrets: readonly string[];
  body: string | Uint8Array;
  /** Required for standard-webhooks (`webhook-id`). */
  deliveryId?: string;
  /** Unix seconds, required for standard-webhooks (`webhook-timestamp`). */
  timestamp?: number;
}

export function signatureHeaders(req: SignatureRequest): Record<string, string> {
  const secrets = req.secrets.filter((s) => s !== "");
  if (secrets.length === 0) return {};
  if (req.scheme === "pyfly") return { [PYFLY_SIGNATURE_HEADER]: pyflySignature(secrets[0]!, req.body) };
  if (req.deliveryId === undefined || req.timestamp === undefined) {
    throw new Error("standard-webhooks signing needs deliveryId and timestamp");
  }
  return standardWebhookHeaders(secrets, req.deliveryId, req.timestamp, req.body);
}

/** For config validation: why `secret` can't sign with `scheme`, or undefined. */
export function signingSecretProblem(scheme: SignatureScheme, secret: string): string | undefined {
  return scheme === "standard-webhooks" ? standardWebhookSecretProblem(secret) : undefined;
}
