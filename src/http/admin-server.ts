/**
 * The admin endpoints probes and operators use: /metrics, /healthz, /readyz, /executions.
 * Plain node:http: four read-only routes do not justify a framework.
 *
 * The port listens on 0.0.0.0 for Prometheus, so anything in the cluster reaches it. The probes and
 * /metrics carry no tenant data and stay open; /executions shows tenants' traffic, so it does not
 * exist unless enabled, and then answers only to the configured bearer token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { CallbackStatus, type CallbackExecution } from "../domain/models.js";
import { redactUrl } from "../domain/subscription-ref.js";
import type { ExecutionQuery, ExecutionStore } from "../repository/execution-store.js";
import { SidecarError } from "../shared/errors.js";

/** `pyfly.callbacks.server.executions` (SidecarSettings.server.executions). */
export interface ExecutionsEndpointOptions {
  enabled: boolean;
  token: string | undefined;
  includePayloads: boolean;
}

export interface AdminServerOptions {
  host: string;
  /** 0 picks a free port; read it back from the result. */
  port: number;
  registry: Registry;
  executions: ExecutionStore;
  isReady: () => boolean;
  logger: Logger;
  /** Absent: /executions is disabled (404), the safe default for a caller that does not say. */
  executionsEndpoint?: ExecutionsEndpointOptions;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_EXECUTIONS_LIMIT = 100;
export const MAX_EXECUTIONS_LIMIT = 1000;

// An allowlist, not a copy: a field added to executions later stays private until listed here.
const EXECUTION_FIELDS = [
  "id",
  "config_id",
  "tenant_id",
  "event_type",
  "target_url",
  "delivery_id",
  "status",
  "attempts",
  "response_status",
  "last_error",
  "duration_ms",
  "created_at",
  "delivered_at",
  "source",
  "payload",
] as const satisfies readonly (keyof CallbackExecution)[];

export type ExecutionView = Omit<Pick<CallbackExecution, (typeof EXECUTION_FIELDS)[number]>, "payload"> & { payload?: unknown };

export interface ExecutionViewOptions {
  /** Payloads are tenants' data: only when the operator asked for them (or it is their own `send`). */
  includePayload: boolean;
}

/**
 * What leaves the process about an execution (admin API, `send` output). The target URL may be a
 * capability URL (a token in its path or query), so it leaves redacted, here and in any error text
 * that quotes it.
 */
export function executionView(execution: CallbackExecution, options: ExecutionViewOptions): ExecutionView {
  const view: Record<string, unknown> = {};
  for (const field of EXECUTION_FIELDS) {
    if (field === "payload" && !options.includePayload) continue;
    view[field] = execution[field];
  }
  view.target_url = redactUrl(execution.target_url);
  view.last_error = scrubUrl(execution.last_error, execution.target_url);
  return view as ExecutionView;
}

function scrubUrl(text: string | null, url: string): string | null {
  if (text === null) return null;
  let hidden: string[];
  try {
    const parsed = new URL(url);
    hidden = [url, parsed.href, `${parsed.pathname}${parsed.search}${parsed.hash}`].filter((part) => part.length > 1);
  } catch {
    hidden = [url];
  }
  // Longest first, so the whole URL is replaced before its path alone.
  return hidden.sort((a, b) => b.length - a.length).reduce((out, part) => out.split(part).join(redactUrl(url)), text);
}

// Comparing digests keeps the time independent of where the first difference is and of the length.
function tokenMatches(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return match?.[1];
}

class BadRequest extends Error {}

/** Parses ?tenant=&status=&limit=; unknown or repeated parameters are refused, not ignored. */
export function parseExecutionQuery(params: URLSearchParams): ExecutionQuery {
  const query: ExecutionQuery = { limit: DEFAULT_EXECUTIONS_LIMIT };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (seen.has(name)) throw new BadRequest(`parameter "${name}" is repeated`);
    seen.add(name);
    // `?tenant=` (empty) means no filter, so URL templates with blank fields work.
    if (value === "") continue;
    if (name === "tenant") {
      query.tenantId = value;
    } else if (name === "status") {
      const status = CallbackStatus.safeParse(value);
      if (!status.success) throw new BadRequest(`parameter "status" must be one of ${CallbackStatus.options.join(", ")}`);
      query.status = status.data;
    } else if (name === "limit") {
      const limit = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
      if (!(limit >= 1 && limit <= MAX_EXECUTIONS_LIMIT)) {
        throw new BadRequest(`parameter "limit" must be an integer from 1 to ${MAX_EXECUTIONS_LIMIT}`);
      }
      query.limit = limit;
    } else {
      throw new BadRequest(`unknown parameter "${name}" (expected tenant, status, limit)`);
    }
  }
  return query;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { registry, executions, isReady, logger } = options;
  const endpoint = options.executionsEndpoint;
  const executionsToken = endpoint?.enabled ? endpoint.token : undefined;
  if (endpoint?.enabled && !executionsToken) {
    // The configuration refuses this (server.executions.token); a programmatic caller gets the same answer.
    throw new SidecarError("CONFIG_INVALID", "the /executions endpoint is enabled without a token");
  }
  const includePayload = endpoint?.includePayloads ?? false;

  const routes: Record<string, (url: URL, res: ServerResponse, req: IncomingMessage) => Promise<void> | void> = {
    "/healthz": (_url, res) => send(res, 200, "text/plain; charset=utf-8", "ok\n"),
    "/readyz": (_url, res) => {
      let ready = false;
      try {
        ready = isReady();
      } catch (error) {
        logger.warn({ err: error }, "readiness check threw; reporting not ready");
      }
      if (ready) return sendJson(res, 200, { status: "ready" });
      sendJson(res, 503, { status: "not ready", reason: "not connected to Kafka or not a member of the consumer group" });
    },
    "/metrics": async (_url, res) => send(res, 200, registry.contentType, await registry.metrics()),
  };
  if (executionsToken !== undefined) {
    routes["/executions"] = (url, res, req) => {
      const given = bearerToken(req.headers.authorization);
      if (given === undefined || !tokenMatches(given, executionsToken)) {
        // RFC 6750: a bare challenge when no credentials came, invalid_token when wrong ones did.
        const challenge =
          given === undefined ? 'Bearer realm="callback-sidecar"' : 'Bearer realm="callback-sidecar", error="invalid_token"';
        res.setHeader("WWW-Authenticate", challenge);
        return sendJson(res, 401, { error: "a bearer token is required (pyfly.callbacks.server.executions.token)" });
      }
      let query: ExecutionQuery;
      try {
        query = parseExecutionQuery(url.searchParams);
      } catch (error) {
        if (error instanceof BadRequest) return sendJson(res, 400, { error: error.message });
        throw error;
      }
      sendJson(
        res,
        200,
        executions.find(query).map((e) => executionView(e, { includePayload })),
      );
    };
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://admin.invalid");
    } catch {
      return sendJson(res, 400, { error: "malformed request target" });
    }
    const route = routes[url.pathname];
    if (!route) return sendJson(res, 404, { error: `no route ${url.pathname}` });
    // HEAD is GET without the body (node drops it); probes and curl -I use it.
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return sendJson(res, 405, { error: `method ${req.method} not allowed` });
    }
    Promise.resolve(route(url, res, req)).catch((error: unknown) => {
      logger.error({ err: error, path: url.pathname }, "admin request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, "admin server listening");

  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Scrapers keep connections alive; without this, close waits for them to time out.
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "Content-Type": contentType, "Cache-Control": "no-store" });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value));
}
