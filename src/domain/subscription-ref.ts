/**
 * Capability URLs (a token in the path or the query, Slack-style) are credentials, so a target URL
 * leaves the process only in one of two forms: redacted for people (logs, executions, records), or
 * as a fingerprint that finds the subscription again in the configuration (retry and dead-letter
 * records, replay). Pure: no I/O.
 */
import { createHash } from "node:crypto";
import type { CallbackSubscription } from "./models.js";

/** What stands for the hidden part of a URL; U+2026, so it is never mistaken for a real path. */
export const REDACTED_PATH = "/\u2026";

const UNREADABLE = "(unreadable URL)";

/**
 * `https://hooks.example.com/…` for any URL with a path beyond "/", a query or a fragment;
 * `https://hooks.example.com/` otherwise. Scheme and host[:port] are kept because they are what
 * an operator needs to tell receivers apart and they already appear as metric labels. User info is
 * dropped (the configuration refuses it, but a URL from elsewhere may carry it). Never throws: a
 * string that is not a URL may still be a secret, so none of it is echoed.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return UNREADABLE;
  }
  // Opaque URLs (mailto:, data:) have no host to keep and everything to hide.
  if (parsed.host === "") return UNREADABLE;
  const hidden = parsed.pathname.length > 1 || parsed.search !== "" || parsed.hash !== "";
  return `${parsed.protocol}//${parsed.host}${hidden ? REDACTED_PATH : "/"}`;
}

export const FINGERPRINT_HEX_LENGTH = 16;

// Bumped if the serialisation ever changes, so an old fingerprint can never match a new one by accident.
const FINGERPRINT_VERSION = "subscription-fingerprint/v1";

/**
 * A short, stable digest of a subscription: the first 16 hex digits (64 bits) of SHA-256 over a
 * canonical serialisation of the event type, the full target URL and the headers (names
 * lower-cased, as HTTP compares them, entries sorted). Equal subscriptions give equal
 * fingerprints across processes and restarts; changing any of the three gives another one.
 *
 * Unkeyed on purpose, so every replica and `replay` compute it without shared state. It therefore
 * hides nothing from someone who can guess the whole URL and headers: capability tokens must be
 * long random strings (docs/security.md).
 */
export function subscriptionFingerprint(subscription: Pick<CallbackSubscription, "event_type" | "target_url" | "headers">): string {
  const headers = Object.entries(subscription.headers ?? {})
    .map(([name, value]) => [name.toLowerCase(), value] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  // JSON of an array: unambiguous whatever characters the parts contain.
  const canonical = JSON.stringify([FINGERPRINT_VERSION, subscription.event_type, subscription.target_url, headers]);
  return createHash("sha256").update(canonical, "utf8").digest("hex").slice(0, FINGERPRINT_HEX_LENGTH);
}
