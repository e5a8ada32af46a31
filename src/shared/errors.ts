/*
 * One error base for the sidecar, after kafkajs' KafkaJSError and undici's UND_ERR_* codes: every
 * error we raise carries a stable `code` that callers test instead of the message, and says whether
 * trying again can help. Messages never carry secrets or payloads.
 */

export type ErrorCode =
  | "CONFIG_INVALID"
  | "INVALID_JSON"
  | "INVALID_HANDOFF_RECORD"
  | "CIRCUIT_OPEN"
  | "SSRF_BLOCKED"
  | "INVALID_CIDR"
  | "HANDOFF_REFUSED"
  | "HANDOFF_ABANDONED"
  | "TOPIC_READ_STALLED"
  | "TIER_RETENTION_TOO_SHORT"
  | "TLS_MATERIAL_INVALID"
  | "PROXY_URL_INVALID"
  | "PROXY_FAILED"
  | "SIGNING_INPUT_INVALID"
  | "RESPONSE_INVALID"
  | "INTERNAL_INVARIANT"
  | "USAGE";

export class SidecarError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

export function hasCode(error: unknown, code: ErrorCode): error is SidecarError {
  return error instanceof SidecarError && error.code === code;
}

/**
 * The first value `pick` finds along an error's `cause` chain, the error itself first: undici and
 * our wrappers keep the error they were given as `cause`. Bounded, since a chain could loop.
 */
export function inCauseChain<T>(error: unknown, pick: (e: object) => T | undefined): T | undefined {
  for (let e = error, depth = 0; e !== null && typeof e === "object" && depth < 8; depth++) {
    const found = pick(e);
    if (found !== undefined) return found;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
