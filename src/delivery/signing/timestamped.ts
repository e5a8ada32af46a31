/**
 * `pyfly-timestamped`: the Stripe-style header that pyfly.webhooks' StripeSignatureValidator
 * accepts, `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each `v1` is the lower-case hex
 * HMAC-SHA256, with one secret's UTF-8 bytes, of `"<t>.<body>"`. One `v1` per secret (rotation: a
 * receiver accepts any). The timestamp makes a captured request useless after the receiver's
 * tolerance (300 s in pyfly.webhooks), which `sha256=` alone cannot do.
 *
 * pyfly's validator signs the body decoded as UTF-8 with invalid bytes replaced; our bodies are
 * canonical JSON text, valid UTF-8, so that is the body's bytes exactly.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const TIMESTAMPED_DEFAULT_TOLERANCE_SECONDS = 300;

function v1(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/** The header value for `secrets` (primary first) at `timestamp` (unix seconds). */
export function timestampedSignature(secrets: readonly string[], timestamp: number, body: string | Uint8Array): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${v1(s, timestamp, body)}`)].join(",");
}

export type TimestampedVerification = { ok: true } | { ok: false; reason: string };

/**
 * The receiver's side, by StripeSignatureValidator's rules: split on "," then on the first "=";
 * `t` must be an integer within the tolerance of `now` (either way); any `v1` matching any secret
 * accepts, compared in constant time.
 */
export function verifyTimestamped(
  secrets: readonly string[],
  header: string,
  body: string | Uint8Array,
  options: { nowSeconds?: number; toleranceSeconds?: number } = {},
): TimestampedVerification {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t" && /^-?\d+$/.test(value)) timestamp = Number(value);
    else if (key === "v1") signatures.push(value);
  }
  if (timestamp === undefined) return { ok: false, reason: "no t=<unix seconds> in the signature" };
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? TIMESTAMPED_DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: `timestamp outside the tolerance of ${tolerance} s` };
  for (const secret of secrets) {
    const expected = Buffer.from(v1(secret, timestamp, body), "utf8");
    for (const given of signatures) {
      const g = Buffer.from(given, "utf8");
      if (g.length === expected.length && timingSafeEqual(g, expected)) return { ok: true };
    }
  }
  return { ok: false, reason: "signature does not match" };
}
