import { pino, type Logger } from "pino";

// Anything that could carry a secret is censored wherever it appears in a log object.
const REDACT_PATHS = [
  "secret",
  "*.secret",
  "secrets",
  "*.secrets",
  "additional_secrets",
  "*.additional_secrets",
  "password",
  "*.password",
  "token",
  "*.token",
  "headers",
  "*.headers",
  "payload",
  "*.payload",
  "body",
  "*.body",
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: "callback-sidecar" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
