/*
 * Which header names and values callback-sidecar sends: one rule, checked where values enter (the
 * config schema, the record decoder) and once more before a request goes out (the sender).
 *
 * - Names: RFC 9110 tokens (section 5.6.2), as undici 7 requires (isValidHTTPToken).
 * - Values: printable ASCII, 0x20-0x7E, with no space at either end; the empty value is allowed.
 *   This is a strict subset of what undici 7 accepts (HTAB, 0x20-0x7E and 0x80-0xFF:
 *   headerCharRegex in lib/core/util.js), so a value that passes always builds. Left out on
 *   purpose: 0x80-0xFF, which undici writes as latin1 bytes that receivers decode as they please
 *   (a UTF-8 tenant id would arrive garbled), and which pyfly's httpx refuses (it encodes header
 *   strings as ASCII); HTAB, because tenant ids and event types also become log fields and
 *   Prometheus labels; edge spaces, which RFC 9110 field values exclude and receivers strip.
 * - Framing headers belong to the HTTP client: undici refuses some (Transfer-Encoding, Keep-Alive,
 *   Upgrade, Expect, a bad Connection or Content-Length) and sets the others itself.
 *
 * Problems name the header, never its value: a configured value may be a credential.
 */

export const TRANSPORT_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "proxy-connection",
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function headerNameProblem(name: string): string | undefined {
  return TOKEN.test(name) ? undefined : "is not a valid HTTP header name (RFC 9110 token)";
}

export function headerValueProblem(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return "contains a control character";
    if (c > 0x7e) return "contains a non-ASCII character (only printable ASCII can be sent in an HTTP header)";
  }
  if (value.startsWith(" ") || value.endsWith(" ")) return "starts or ends with a space";
  return undefined;
}

/** The first reason the headers of an outgoing request cannot be sent, or undefined. */
export function requestHeadersProblem(headers: Readonly<Record<string, string>>): string | undefined {
  for (const [name, value] of Object.entries(headers)) {
    const problem =
      headerNameProblem(name) ?? (TRANSPORT_HEADERS.has(name.toLowerCase()) ? "is set by the HTTP client" : headerValueProblem(value));
    if (problem) return `header ${name} ${problem}`;
  }
  return undefined;
}

/** The identity headers every request carries (with the signature): nothing configured may take them. */
export const DELIVERY_ID_HEADER = "X-Pyfly-Delivery-Id";
export const EVENT_TYPE_HEADER = "X-Pyfly-Event-Type";
export const TENANT_ID_HEADER = "X-Pyfly-Tenant-Id";
