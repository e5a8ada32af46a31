import type { CallbackConfig } from "../domain/models.js";
import type { ProxySettings } from "../delivery/proxy/proxy-route.js";
import type { LOG_LEVELS, ORDERINGS } from "./schema.js";

/** The validated configuration, in the shape the code reads (durations in milliseconds). */
export interface SidecarSettings {
  enabled: boolean;
  shutdownGraceMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  http: {
    timeoutMs: number;
    maxConnectionsPerHost: number;
    allowPrivateNetworks: boolean;
    allowedCidrs: string[];
    dryRun: boolean;
    /** The egress proxy: http.proxy, else the HTTPS_PROXY / HTTP_PROXY / NO_PROXY environment. */
    proxy: ProxySettings;
    circuitBreaker: { failureThreshold: number; recoveryTimeoutMs: number };
  };
  /** `tiersMs`: the delay tiers, ascending, without duplicates (see kafka/retry-tiers.ts). */
  retry: { jitter: number; inProcessBudgetMs: number; topic: string; tiersMs: number[] };
  deadLetter: { topic: string };
  /** `protocol`: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf). */
  tracing: { enabled: boolean; protocol: "http/protobuf" | "http/json" };
  /** Keys for the MAC of retry and dead-letter records; empty: derived from each config's secret. */
  handoff: { keys: string[] };
  kafka: {
    brokers: string[];
    clientId: string;
    groupId: string;
    topics: string[];
    topicPattern: string | undefined;
    fromBeginning: boolean;
    tenantHeader: string;
    eventTypeHeader: string;
    eventIdHeader: string;
    cloudEventsTenantAttribute: string;
    maxInFlight: number;
    /** Event records received and not yet finished, all partitions together (unset: ConsumerRunner's default). */
    maxBuffered: number | undefined;
    ordering: (typeof ORDERINGS)[number];
    sessionTimeoutMs: number;
    connectionTimeoutMs: number;
    ssl: { enabled: boolean; caFile?: string; certFile?: string; keyFile?: string; rejectUnauthorized: boolean };
    sasl: { mechanism: "none" | "plain" | "scram-sha-256" | "scram-sha-512"; username?: string; password?: string };
  };
  server: {
    port: number;
    host: string;
    /** The /executions endpoint: 404 unless enabled; then only with `Authorization: Bearer <token>`. */
    executions: { enabled: boolean; token: string | undefined; includePayloads: boolean };
  };
  executions: { capacity: number };
  configs: CallbackConfig[];
}
