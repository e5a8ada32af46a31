import type { Dispatcher } from "undici";
import { Agent, errors as undiciErrors } from "./undici-parts.js";
import type { Logger } from "pino";
import type { ReceiverTls } from "../domain/models.js";
import { proxyErrorOf } from "./proxy/connect-tunnel.js";
import { isSsrfBlockedError, type Connector } from "./ssrf/guarded-connector.js";
import { tlsKeyOf, type TlsConnectOptions, type TlsMaterial } from "./tls-material.js";
import type { AttemptOutcome } from "../domain/outcomes.js";
import { parseRetryAfterMs } from "./retry-policy.js";
import { BreakerRegistry, CircuitOpenError } from "./breaker.js";
import { targetHostOf } from "../domain/target-host.js";
import { redactUrl } from "../domain/subscription-ref.js";
import { requestHeadersProblem } from "../domain/header-rules.js";
import { inCauseChain, SidecarError } from "../shared/errors.js";

export interface OutboundRequest {
  url: URL;
  headers: Record<string, string>;
  body: string;
  /** The config's receiver TLS setting; null: Node's defaults. */
  tls?: ReceiverTls | null;
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
  /** The SSRF-guarded connector (and the proxy's road), for a TLS setting's options. */
  connect: (tls: TlsConnectOptions | undefined) => Connector;
  /** Each receiver TLS setting's material, by tlsKeyOf; a request naming another has none. */
  tlsMaterials?: ReadonlyMap<string, TlsMaterial>;
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
  const agentFor = (tls: TlsConnectOptions | undefined) =>
    new Agent({
      connections: options.maxConnectionsPerHost,
      connect: options.connect(tls),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  const plain = agentFor(undefined);
  // One Agent per TLS setting and material version: new files mean new connections, while
  // requests already on the previous Agent finish there (close() waits for them).
  const withTls = new Map<string, { version: number; agent: Agent }>();
  const agentOf = (request: OutboundRequest): Agent => {
    if (!request.tls) return plain;
    const key = tlsKeyOf(request.tls);
    const material = options.tlsMaterials?.get(key);
    if (material === undefined) return plain;
    const { version, options: tls } = material.current();
    let entry = withTls.get(key);
    if (entry?.version !== version) {
      void entry?.agent.close().catch(() => undefined);
      entry = { version, agent: agentFor(tls) };
      withTls.set(key, entry);
    }
    return entry.agent;
  };

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
      agentOf(request).dispatch(
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
            settle(() => (outcome ? resolve(outcome) : reject(new SidecarError("RESPONSE_INVALID", "response ended without a status"))));
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
          (result) => result.kind === "rejected" || (result.kind === "error" && result.category === "proxy_error"),
        );
      } catch (error) {
        outcome = classifyError(error);
      }
      return { outcome, durationMs: performance.now() - started };
    },
    close: async () => {
      await Promise.all([plain, ...[...withTls.values()].map((e) => e.agent)].map((agent) => agent.close()));
    },
  };
}

/** A request that cannot be built never reaches the host: a final outcome, outside its breaker. */
function invalidRequest(request: OutboundRequest): AttemptResult | undefined {
  const problem = requestHeadersProblem(request.headers);
  return problem === undefined ? undefined : { outcome: { kind: "rejected", reason: "invalid_request", message: problem }, durationMs: 0 };
}

/**
 * What fails an attempt without saying anything about the host's health, met inside the breaker,
 * which takes them as neutral: the SSRF policy (known only once the address is resolved), a
 * request undici will not build, the egress proxy failing (retried), and the receiver refusing our
 * client certificate in the handshake (final: it repeats until the certificate changes).
 */
export function refusalOf(error: unknown): Extract<AttemptOutcome, { kind: "rejected" } | { category: "proxy_error" }> | undefined {
  if (isSsrfBlockedError(error)) return { kind: "rejected", reason: "ssrf_blocked", message: error.message };
  const proxy = proxyErrorOf(error);
  if (proxy) return { kind: "error", category: "proxy_error", reason: proxy.reason, message: proxy.message };
  const alert = clientCertificateAlertOf(error);
  if (alert)
    return { kind: "rejected", reason: "client_certificate_rejected", message: `the receiver refused our client certificate (${alert})` };
  if (error instanceof undiciErrors.InvalidArgumentError || (error as { code?: unknown } | null)?.code === "UND_ERR_INVALID_ARG") {
    return { kind: "rejected", reason: "invalid_request", message: `request refused by the HTTP client: ${(error as Error).message}` };
  }
  return undefined;
}

// TLS alerts a server sends when it will not take the client's certificate (OpenSSL's error codes
// for a received alert); a refusal of the server's certificate by us has other codes.
const CLIENT_CERTIFICATE_ALERT =
  /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(?:CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE)$/;

function clientCertificateAlertOf(error: unknown): string | undefined {
  return inCauseChain(error, (e) => {
    const code = (e as { code?: unknown }).code;
    return typeof code === "string" && CLIENT_CERTIFICATE_ALERT.test(code)
      ? code.replace(/^ERR_SSL_\w+?_ALERT_/, "").toLowerCase()
      : undefined;
  });
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
