/**
 * The one signing entry point for the dispatcher, over the exact body bytes that are sent.
 *
 * - `pyfly`: depends only on the body, so it can be computed once per (config, event) and reused on
 *   every attempt and every subscription of that config. Only `secrets[0]` is used: a pyfly
 *   receiver compares against exactly one signature, so rotation can't be expressed (config
 *   validation should reject additional secrets for this scheme).
 * - `github`: the same `sha256=<hex>` value in `X-Hub-Signature-256`, which pyfly.webhooks'
 *   GitHubSignatureValidator (and GitHub-style receivers) read. One secret, body only.
 * - `pyfly-timestamped`: `t=<unix>,v1=<hex>` (see timestamped.ts), per attempt since it signs the
 *   attempt's time; one `v1` per secret, for rotation.
 * - `standard-webhooks`: also signs `deliveryId` and `timestamp`, so it is per delivery. Use a
 *   delivery id that is stable across attempts (receivers dedupe on it) and the attempt's own time
 *   (receivers reject timestamps more than 5 minutes away, and retries can come much later).
 *   Every secret signs, primary first, for rotation.
 * Empty secrets are dropped; with none left no header is produced (pyfly signs only with a secret).
 */
import { PYFLY_SIGNATURE_HEADER, pyflySignature } from "./pyfly.js";
import { timestampedSignature } from "./timestamped.js";
import {
  standardWebhookHeaders,
  standardWebhookSecretProblem,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from "./standard-webhooks.js";
import { SidecarError } from "../../shared/errors.js";
import type { SigningScheme } from "../../domain/models.js";

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
export { TIMESTAMPED_DEFAULT_TOLERANCE_SECONDS, timestampedSignature, verifyTimestamped } from "./timestamped.js";
export type { TimestampedVerification } from "./timestamped.js";

export const GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256";

/** The header a scheme signs in, unless the config names another (schemes with one header only). */
export const DEFAULT_SIGNATURE_HEADER: Partial<Record<SigningScheme, string>> = {
  pyfly: PYFLY_SIGNATURE_HEADER,
  "pyfly-timestamped": PYFLY_SIGNATURE_HEADER,
  github: GITHUB_SIGNATURE_HEADER,
};

/** Schemes whose receivers try several signatures, so `additional-secrets` can rotate them. */
export const ROTATING_SCHEMES: readonly SigningScheme[] = ["pyfly-timestamped", "standard-webhooks"];

/** Schemes whose value depends on the body alone: computed once per (config, event). */
export const BODY_ONLY_SCHEMES: readonly SigningScheme[] = ["pyfly", "github"];

/** Lower-case names of every header the signers set by default, whatever the scheme. */
export const SIGNATURE_HEADER_NAMES: readonly string[] = [
  PYFLY_SIGNATURE_HEADER.toLowerCase(),
  GITHUB_SIGNATURE_HEADER.toLowerCase(),
  WEBHOOK_ID_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
];

/** True for a header a subscription must not set (signature headers win, compared case-insensitively). */
export function isSignatureHeader(name: string): boolean {
  return SIGNATURE_HEADER_NAMES.includes(name.toLowerCase());
}

export interface SignatureRequest {
  scheme: SigningScheme;
  secrets: readonly string[];
  body: string | Uint8Array;
  /** Required for standard-webhooks (`webhook-id`). */
  deliveryId?: string;
  /** Unix seconds, required for standard-webhooks (`webhook-timestamp`) and pyfly-timestamped. */
  timestamp?: number;
  /** The header of a one-header scheme, when not its default (`signature-header`). */
  header?: string | undefined;
}

export function signatureHeaders(req: SignatureRequest): Record<string, string> {
  const secrets = req.secrets.filter((s) => s !== "");
  if (secrets.length === 0) return {};
  const header = req.header ?? DEFAULT_SIGNATURE_HEADER[req.scheme];
  if (req.scheme === "pyfly" || req.scheme === "github") return { [header as string]: pyflySignature(secrets[0]!, req.body) };
  if (req.timestamp === undefined) throw new SidecarError("SIGNING_INPUT_INVALID", `${req.scheme} signing needs a timestamp`);
  if (req.scheme === "pyfly-timestamped") return { [header as string]: timestampedSignature(secrets, req.timestamp, req.body) };
  if (req.deliveryId === undefined) throw new SidecarError("SIGNING_INPUT_INVALID", "standard-webhooks signing needs deliveryId");
  return standardWebhookHeaders(secrets, req.deliveryId, req.timestamp, req.body);
}

/** For config validation: why `secret` can't sign with `scheme`, or undefined. */
export function signingSecretProblem(scheme: SigningScheme, secret: string): string | undefined {
  return scheme === "standard-webhooks" ? standardWebhookSecretProblem(secret) : undefined;
}
