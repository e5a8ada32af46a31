/**
 * `verify`: checks a received body against a signature, as a receiver would. The body is read as
 * raw bytes and never normalised: the signature covers exactly what was sent.
 */
import { verifyPyflySignature, verifyStandardWebhook, verifyTimestamped } from "../delivery/signing/index.js";
import { EXIT, parseCommandArgs, readStdin, SIGNING_OPTIONS, signingArgs, UsageError, writeErr, writeOut } from "./common.js";

export const VERIFY_USAGE = `Usage: callback-sidecar verify --secret S --signature SIG [--scheme SCHEME] [--id ID --timestamp T]

Reads the raw body on stdin; prints "valid" and exits 0, or "invalid" and exits 1.
  --secret S          secret to check with (repeat to accept any of several)
  --secret-env NAME   read the secret from environment variable NAME instead
  --scheme            pyfly (default), pyfly-timestamped, github or standard-webhooks
  --signature SIG     pyfly, github: the X-Pyfly-Signature / X-Hub-Signature-256 value ("sha256=" optional);
                      pyfly-timestamped: the X-Pyfly-Signature value ("t=<unix>,v1=<hex>...");
                      standard-webhooks: the webhook-signature value ("v1,<base64> ...")
  --id, --timestamp   standard-webhooks: the webhook-id and webhook-timestamp values (required)
  --tolerance SECS    standard-webhooks, pyfly-timestamped: accepted clock skew (default 300)`;

const OPTIONS = { ...SIGNING_OPTIONS, signature: { type: "string" }, tolerance: { type: "string" } } as const;

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, OPTIONS);
  const args = signingArgs(values);
  const signature = values.signature;
  if (!signature) throw new UsageError("--signature is required");
  if (values.tolerance !== undefined && values.scheme !== "standard-webhooks" && values.scheme !== "pyfly-timestamped") {
    throw new UsageError("--tolerance applies to the standard-webhooks and pyfly-timestamped schemes only");
  }
  const body = await readStdin();

  let reason: string | undefined;
  if (args.scheme === "pyfly" || args.scheme === "github") {
    if (!args.secrets.some((secret) => verifyPyflySignature(secret, body, signature))) reason = "signature does not match";
  } else if (args.scheme === "pyfly-timestamped") {
    const result = verifyTimestamped(args.secrets, signature, body, { toleranceSeconds: tolerance(values.tolerance) });
    if (!result.ok) reason = result.reason;
  } else {
    if (args.id === undefined || args.timestamp === undefined) {
      throw new UsageError("standard-webhooks needs --id and --timestamp (the webhook-id and webhook-timestamp headers)");
    }
    const headers = { "webhook-id": args.id, "webhook-timestamp": String(args.timestamp), "webhook-signature": signature };
    const result = verifyStandardWebhook(args.secrets, headers, body, { toleranceSeconds: tolerance(values.tolerance) });
    if (!result.ok) reason = result.reason;
  }

  if (reason === undefined) {
    writeOut("valid");
    return EXIT.OK;
  }
  writeOut("invalid");
  writeErr(`verify: ${reason}`);
  // The usual way to get this wrong: `echo` or `jq -r` adds a newline that was never signed.
  if (body.at(-1) === 0x0a)
    writeErr("verify: note: the body ends with a newline, which is part of the signed bytes (use printf '%s' or jq -j)");
  return EXIT.NEGATIVE;
}

function tolerance(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,10}$/.test(value)) throw new UsageError("--tolerance must be a whole number of seconds");
  return Number(value);
}
