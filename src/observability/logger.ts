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

/** What a log line says about the current trace; set once tracing starts (tracing.ts). */
export interface LogContext {
  ids: () => Record<string, string> | undefined;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream, context?: LogContext): Logger {
  return pino(
    {
      level,
      base: { service: "callback-sidecar" },
      // Only a logger that may see traces asks for the current span on each line.
      ...(context ? { mixin: () => context.ids() ?? {} } : {}),
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
