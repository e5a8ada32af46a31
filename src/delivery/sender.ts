import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
import type { Logger } from "pino";
import { isSsrfBlockedError } from "./ssrf/guarded-connector.js";
import type { AttemptOutcome } from "./retry-policy.js";
import { parseRetryAfterMs } from "./retry-policy.js";
import { BreakerRegistry, CircuitOpenError } from "./breaker.js";
import { targetHostOf } from "./target.js";
import { redactUrl } from "../domain/subscription-ref.js";
import { requestHeadersProblem } from "./http-header-check.js";

export interface OutboundRequest {
  url: URL;
  headers: Record<string, string>;
  body: string;
}

export interface AttemptResult {
  outcome: AttemptOutcome;
  durationMs: number;
}

/** Sends one attempt and says what happened; never throws for anything the target did. */
export interface Sender {
  send(request: OutboundRequest): Promise<AttemptResult>;
  close(): Promise<void>;
}

export interface HttpSenderOptions {
  timeoutMs: number;
  maxConnectionsPerHost: number;
  breakers: BreakerRegistry;
  /** undici `connect` option: the SSRF-guarded connector. */
  connect: ConstructorParameters<typeof Agent>[0] extends infer O ? (O extends { connect?: infer C } ? C : never) : never;
}

// Receivers' response bodies are read only to free the connection; a cap keeps a chatty one cheap.
const MAX_DRAINED_BODY_BYTES = 64 * 1024;

/**
 * undici over one shared keep-alive Agent (a per-host connection cap), each attempt inside the
 * host's circuit breaker, and one deadline for the whole request: connect, send, headers, body.
 * Redirects are never followed (undici's request does not follow them), so a 3xx reaches the
 * dispatcher as a final status.
 */
export function createHttpSender(options: HttpSenderOptions): Sender {
  const agent = new Agent({
    connections: options.maxConnectionsPerHost,
    connect: options.connect,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });

  // Per attempt: one timer (Node keeps same-duration timers in one list) and one handler object;
  // no AbortController, no listener, no stream. undici's controller aborts a request that is late.
  const post = (request: OutboundRequest): Promise<AttemptOutcome> =>
    new Promise((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let outcome: AttemptOutcome | undefined;
      let drained = 0;
      let timedOut = false;
      let settled = false;
      const settle = (finish: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        finish();
      };
      const timer = setTimeout(() => {
        timedOut = true;
        controller?.abort(timeoutError());
        settle(() => reject(timeoutError()));
      }, options.timeoutMs);
      agent.dispatch(
        {
          origin: request.url.origin,
          path: `${request.url.pathname}${request.url.search}`,
          method: "POST",
          headers: request.headers,
          body: request.body,
        },
        {
          onRequestStart(c) {
            controller = c;
            if (timedOut) c.abort(timeoutError());
          },
          onResponseStart(_c, statusCode, headers) {
            const retryAfter = headers["retry-after"];
            const retryAfterMs =
              statusCode === 429 || statusCode === 503
                ? parseRetryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter)
                : undefined;
            outcome =
              retryAfterMs === undefined
                ? { kind: "response", status: statusCode }
                : { kind: "response", status: statusCode, retryAfterMs };
          },
          onResponseData(c, chunk) {
            // Read only to free the connection; a chatty receiver's body is cut off (and its connection closed).
            drained += chunk.length;
            if (drained > MAX_DRAINED_BODY_BYTES && outcome) {
              const answered = outcome;
              settle(() => resolve(answered));
              c.abort(new Error("response body over the drain limit"));
            }
          },
          onResponseEnd() {
            settle(() => (outcome ? resolve(outcome) : reject(new Error("response ended without a status"))));
          },
          onResponseError(_c, error) {
            settle(() => reject(timedOut ? timeoutError() : error));
          },
        },
      );
    });

  return {
    async send(request) {
      const invalid = invalidRequest(request);
      if (invalid) return invalid;
      const started = performance.now();
      let outcome: AttemptOutcome;
      try {
        outcome = await options.breakers.run(
          targetHostOf(request.url),
          () =>
            post(request).catch((error: unknown) => {
              const refusal = refusalOf(error);
              if (refusal) return refusal;
              throw error;
            }),
          (result) => result.kind === "rejected",
        );
      } catch (error) {
        outcome = classifyError(error);
      }
      return { outcome, durationMs: performance.now() - started };
    },
    close: () => agent.close(),
  };
}

/** A request that cannot be built never reaches the host: a final outcome, outside its breaker. */
function invalidRequest(request: OutboundRequest): AttemptResult | undefined {
  const problem = requestHeadersProblem(request.headers);
  return problem === undefined ? undefined : { outcome: { kind: "rejected", reason: "invalid_request", message: problem }, durationMs: 0 };
}

/**
 * The sender's own refusals, met inside the breaker: the SSRF policy (known only once the address
 * is resolved) and a request undici will not build. Neither says anything about the host's health,
 * so the breaker takes them as neutral.
 */
export function refusalOf(error: unknown): Extract<AttemptOutcome, { kind: "rejected" }> | undefined {
  if (isSsrfBlockedError(error)) return { kind: "rejected", reason: "ssrf_blocked", message: error.message };
  if (error instanceof undiciErrors.InvalidArgumentError || (error as { code?: unknown } | null)?.code === "UND_ERR_INVALID_ARG") {
    return { kind: "rejected", reason: "invalid_request", message: `request refused by the HTTP client: ${(error as Error).message}` };
  }
  return undefined;
}

export function classifyError(error: unknown): AttemptOutcome {
  if (error instanceof CircuitOpenError) return { kind: "error", category: "circuit_open", message: error.message };
  const err = error as { name?: string; code?: string; message?: string };
  if (
    err.name === "TimeoutError" ||
    err.name === "AbortError" ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  ) {
    return { kind: "error", category: "timeout", message: "Request timed out" };
  }
  const detail = err.code ? `${err.code}: ${err.message ?? ""}` : (err.message ?? String(error));
  return { kind: "error", category: "transport_error", message: detail.trim() };
}

/** pyfly's no-op sender: logs the would-be request and opens no connection (staging, trials). */
export function createDryRunSender(logger: Logger): Sender {
  return {
    async send(request) {
      const invalid = invalidRequest(request);
      if (invalid) return invalid;
      logger.info(
        {
          target_url: redactUrl(request.url.href),
          bytes: Buffer.byteLength(request.body),
          event_type: request.headers["X-Pyfly-Event-Type"],
        },
        "dry-run: would POST webhook",
      );
      return { outcome: { kind: "response", status: 200 }, durationMs: 0 };
    },
    close: async () => undefined,
  };
}

function timeoutError(): Error {
  return new DOMException("Request timed out", "TimeoutError");
}
