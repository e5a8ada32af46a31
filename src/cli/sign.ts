/**
 * `sign`: what the sidecar would send for a payload, so a receiver can be tested without Kafka.
 * The body is the canonical form (Python's json.dumps(sort_keys=True, separators=(",", ":"))),
 * the bytes the signature covers; pipe it on exactly, without an added newline.
 */
import { randomUUID } from "node:crypto";
import { CanonicalJsonError, canonicalizeJson } from "../delivery/canonical-json.js";
import { signatureHeaders } from "../delivery/signing/index.js";
import { EXIT, parseCommandArgs, readStdin, SIGNING_OPTIONS, signingArgs, UsageError, writeOut } from "./common.js";

export const SIGN_USAGE = `Usage: callback-sidecar sign --secret S [--scheme SCHEME] [--id ID] [--timestamp T]

Reads a JSON payload on stdin and prints one JSON object {"body": <exact body>, "headers": {...}}.
  --secret S          signing secret (repeat for rotation with standard-webhooks, pyfly-timestamped)
  --secret-env NAME   read the secret from environment variable NAME instead (keeps it out of ps)
  --scheme            pyfly (default: X-Pyfly-Signature: sha256=<hex>), pyfly-timestamped
                      (X-Pyfly-Signature: t=<unix>,v1=<hex>), github (X-Hub-Signature-256:
                      sha256=<hex>) or standard-webhooks (webhook-* headers)
  --id ID             standard-webhooks message id (default: msg_<random uuid>)
  --timestamp T       standard-webhooks and pyfly-timestamped unix seconds (default: now)`;

export async function signCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, SIGNING_OPTIONS);
  const args = signingArgs(values);
  const body = canonicalBody(await readStdin());
  const signed = signatureHeaders({
    scheme: args.scheme,
    secrets: args.secrets,
    body,
    deliveryId: args.id ?? `msg_${randomUUID()}`,
    timestamp: args.timestamp ?? Math.floor(Date.now() / 1000),
  });
  writeOut(JSON.stringify({ body, headers: { "Content-Type": "application/json", ...signed } }));
  return EXIT.OK;
}

/**
 * Bad input is the caller's mistake (exit 2); the offset lets them find it. Strict, as the sidecar
 * is with events: NaN or Infinity would be refused there too.
 */
export function canonicalBody(json: string | Uint8Array, what = "stdin"): string {
  try {
    return canonicalizeJson(json, { strict: true });
  } catch (error) {
    if (error instanceof CanonicalJsonError) throw new UsageError(`${what} is not valid JSON: ${error.message}`);
    throw error;
  }
}
