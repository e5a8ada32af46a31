/**
 * pyfly's scheme: `X-Pyfly-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, no timestamp, so the
 * value depends only on the secret and the body bytes. The receiver side mirrors pyfly's
 * HmacSignatureValidator (prefix optional, exact lower-case hex, constant-time compare).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const PYFLY_SIGNATURE_HEADER = "X-Pyfly-Signature";
const PREFIX = "sha256=";

/** `secret` is used as its UTF-8 bytes, as pyfly's `secret.encode("utf-8")`. */
export function pyflySignature(secret: string, body: string | Uint8Array): string {
  return PREFIX + createHmac("sha256", secret).update(body).digest("hex");
}

export function verifyPyflySignature(secret: string, body: string | Uint8Array, signature: string | null | undefined): boolean {
  if (!signature) return false;
  const given = Buffer.from(signature.startsWith(PREFIX) ? signature.slice(PREFIX.length) : signature, "utf8");
  const expected = Buffer.from(createHmac("sha256", secret).update(body).digest("hex"), "utf8");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
