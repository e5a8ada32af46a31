import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { parseDocument, type ScalarTag, type Tags } from "yaml";
import type { z } from "zod";
import { CallbackConfig, type RateLimit, type ReceiverTls } from "../domain/models.js";
import { parseProxyUrl, ProxyUrlError, proxySettingsOf, type ProxySettings } from "../delivery/proxy/proxy-route.js";
import { readTlsMaterial, TlsMaterialError } from "../delivery/tls-material.js";
import { applyEnvOverrides } from "./env-overrides.js";
import { ConfigError, ConfigErrors, type ConfigWarning } from "./errors.js";
import { expandPlaceholders } from "./placeholders.js";
import { callbacksSchema, documentSchema, handoffTopicsOf, type RawCallbackConfig, type RawCallbacks } from "./schema.js";
import type { SidecarSettings } from "./settings.js";
import { checkSemantics, semanticWarnings } from "./semantics.js";

export const DEFAULT_CONFIG_FILE = "application.yml";

export interface LoadOptions {
  /** Explicit path (--config); else PYFLY_CONFIG_FILE; else ./application.yml if it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Receives what is worth telling the operator but does not stop start-up. */
  warnings?: ConfigWarning[];
}

/** Reads, expands, overrides and validates; throws ConfigErrors naming every bad key path. */
export function loadSettings(options: LoadOptions = {}): SidecarSettings {
  const env = options.env ?? process.env;
  const explicit = options.file ?? env.PYFLY_CONFIG_FILE;
  const file = explicit ?? DEFAULT_CONFIG_FILE;
  if (explicit !== undefined && !existsSync(file)) {
    throw new ConfigErrors([new ConfigError("", `configuration file ${file} does not exist`)]);
  }
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  return parseSettings(text, env, file, options.warnings);
}

export function parseSettings(
  yamlText: string,
  env: NodeJS.ProcessEnv,
  fileName = "<inline>",
  warnings: ConfigWarning[] = [],
): SidecarSettings {
  const document = parseYaml(yamlText, fileName);
  const errors: ConfigError[] = [];
  const found: ConfigWarning[] = [];
  const expanded = expandPlaceholders(document, env, "", errors) as Record<string, unknown>;
  errors.push(...applyEnvOverrides(expanded, callbacksSchema as unknown as z.ZodType, env, found));
  applyConventionalEnv(expanded, env);
  const result = documentSchema.safeParse(expanded);
  if (!result.success) {
    errors.push(...result.error.issues.map((issue) => new ConfigError(formatPath(issue.path), issue.message)));
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  const raw = (result.data as { pyfly: { callbacks: RawCallbacks } }).pyfly.callbacks;
  const semanticErrors = checkSemantics(raw);
  if (semanticErrors.length > 0) throw new ConfigErrors(semanticErrors);
  const proxy = proxySettingsOf({ url: raw.http.proxy.url, noProxy: raw.http.proxy["no-proxy"] }, env);
  const protocol = otlpProtocolOf(env);
  const settings = toSettings(raw, proxy, protocol.value);
  const fileErrors = [...proxyErrors(raw, proxy), ...tlsFileErrors(raw, settings), ...(raw.tracing.enabled ? protocol.errors : [])];
  if (fileErrors.length > 0) throw new ConfigErrors(fileErrors);
  // Only a configuration that loads has warnings worth reading.
  warnings.push(...found, ...semanticWarnings(raw));
  return settings;
}

const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const;

/** The OTLP protocol the standard variables ask for; gRPC is not offered (OTLP over HTTP only). */
function otlpProtocolOf(env: NodeJS.ProcessEnv): { value: (typeof OTLP_PROTOCOLS)[number]; errors: ConfigError[] } {
  const name = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const asked = env[name]?.trim() || "http/protobuf";
  const known = OTLP_PROTOCOLS.find((p) => p === asked);
  if (known) return { value: known, errors: [] };
  return {
    value: "http/protobuf",
    errors: [new ConfigError(`environment ${name}`, `expected one of ${OTLP_PROTOCOLS.join(", ")}, got ${asked}`)],
  };
}

/** A proxy from the environment is checked as http.proxy.url is, naming the variable. */
function proxyErrors(raw: RawCallbacks, proxy: ProxySettings): ConfigError[] {
  if (raw.http.proxy.url !== undefined) return [];
  const errors: ConfigError[] = [];
  for (const [name, url] of [
    ["HTTP_PROXY", proxy.http],
    ["HTTPS_PROXY", proxy.https],
  ] as const) {
    if (url === undefined) continue;
    try {
      parseProxyUrl(url);
    } catch (error) {
      if (!(error instanceof ProxyUrlError)) throw error;
      errors.push(new ConfigError(`environment ${name} (or ${name.toLowerCase()})`, error.message));
    }
  }
  return errors;
}

/**
 * Each receiver TLS setting's files, read as the sender will read them, the error at the key that
 * named the file: the config's own tls, else http.tls it inherited.
 */
function tlsFileErrors(raw: RawCallbacks, settings: SidecarSettings): ConfigError[] {
  const errors: ConfigError[] = [];
  const checked = new Set<string>();
  settings.configs.forEach((config, i) => {
    if (config.tls === null) return;
    try {
      readTlsMaterial(config.tls);
    } catch (error) {
      if (!(error instanceof TlsMaterialError)) throw error;
      const own = raw.configs[i]?.tls?.[error.key] !== undefined;
      const path = own ? `pyfly.callbacks.configs[${i}].tls.${error.key}` : `pyfly.callbacks.http.tls.${error.key}`;
      if (!checked.has(path)) errors.push(new ConfigError(path, error.message));
      checked.add(path);
    }
  });
  return errors;
}

// Integers beyond 2^53 stay exact (BigInt): a payload filter compares a 20-digit id exactly. Any
// other key given one fails its number check, as it would anyway.
const exactIntegers = (tags: Tags): Tags =>
  tags.map((tag) => {
    if (typeof tag !== "object" || tag.tag !== "tag:yaml.org,2002:int" || tag.format !== undefined || "collection" in tag) return tag;
    const exact: ScalarTag = {
      ...tag,
      resolve: (source: string) => {
        const n = Number(source);
        return Number.isSafeInteger(n) ? n : BigInt(source);
      },
    };
    return exact;
  });

function parseYaml(text: string, fileName: string): Record<string, unknown> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, customTags: exactIntegers });
  if (doc.errors.length > 0) {
    throw new ConfigErrors(
      doc.errors.map((e) => {
        const line = e.linePos?.[0];
        const where = line ? `${fileName}:${line.line}:${line.col}` : fileName;
        return new ConfigError("", `${where}: invalid YAML: ${e.message.split("\n")[0]}`);
      }),
    );
  }
  const value: unknown = doc.toJS() ?? {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigErrors([new ConfigError("", `${fileName}: expected a YAML mapping at the top level`)]);
  }
  return value as Record<string, unknown>;
}

/** KAFKA_BROKERS and LOG_LEVEL are what operators reach for first; they win over the file. */
function applyConventionalEnv(document: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const pyfly = (document.pyfly ??= {}) as Record<string, unknown>;
  const callbacks = (pyfly.callbacks ??= {}) as Record<string, unknown>;
  if (env.KAFKA_BROKERS) {
    const kafka = (callbacks.kafka ??= {}) as Record<string, unknown>;
    kafka.brokers = env.KAFKA_BROKERS;
  }
  if (env.LOG_LEVEL) callbacks["log-level"] = env.LOG_LEVEL;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`;
    return out === "" ? String(key) : `${out}.${String(key)}`;
  }, "");
}

/** Stable across restarts, so delivery ids derived from it stay stable too. */
function stableConfigId(tenantId: string, name: string): string {
  const hex = createHash("sha256").update(`${tenantId}\u0000${name}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function toSettings(raw: RawCallbacks, proxy: ProxySettings, otlpProtocol: SidecarSettings["tracing"]["protocol"]): SidecarSettings {
  const k = raw.kafka;
  return {
    enabled: raw.enabled,
    shutdownGraceMs: raw["shutdown-grace"],
    logLevel: raw["log-level"],
    http: {
      timeoutMs: raw.http.timeout,
      maxConnectionsPerHost: raw.http["max-connections-per-host"],
      allowPrivateNetworks: raw.http["allow-private-networks"],
      allowedCidrs: raw.http["allowed-cidrs"],
      dryRun: raw.http["dry-run"],
      proxy,
      circuitBreaker: {
        failureThreshold: raw.http["circuit-breaker"]["failure-threshold"],
        recoveryTimeoutMs: raw.http["circuit-breaker"]["recovery-timeout"],
      },
    },
    retry: {
      jitter: raw.retry.jitter,
      inProcessBudgetMs: raw.retry["in-process-budget"],
      topic: handoffTopicsOf(raw).retry,
      tiersMs: [...new Set(raw.retry.tiers)].sort((a, b) => a - b),
    },
    deadLetter: { topic: handoffTopicsOf(raw).deadLetter },
    tracing: { enabled: raw.tracing.enabled, protocol: otlpProtocol },
    handoff: { keys: raw.handoff.keys },
    kafka: {
      brokers: k.brokers,
      clientId: k["client-id"],
      groupId: k["group-id"],
      topics: k.topics,
      topicPattern: k["topic-pattern"],
      fromBeginning: k["from-beginning"],
      tenantHeader: k["tenant-header"],
      eventTypeHeader: k["event-type-header"],
      eventIdHeader: k["event-id-header"],
      cloudEventsTenantAttribute: k["cloudevents-tenant-attribute"],
      maxInFlight: k["max-in-flight"],
      maxBuffered: k["max-buffered"],
      ordering: k.ordering,
      sessionTimeoutMs: k["session-timeout"],
      connectionTimeoutMs: k["connection-timeout"],
      ssl: {
        enabled: k.ssl.enabled,
        caFile: k.ssl["ca-file"],
        certFile: k.ssl["cert-file"],
        keyFile: k.ssl["key-file"],
        rejectUnauthorized: k.ssl["reject-unauthorized"],
      },
      sasl: { mechanism: k.sasl.mechanism, username: k.sasl.username, password: k.sasl.password },
    },
    server: {
      port: raw.server.port,
      host: raw.server.host,
      executions: {
        enabled: raw.server.executions.enabled,
        token: raw.server.executions.token,
        includePayloads: raw.server.executions["include-payloads"],
      },
    },
    executions: { capacity: raw.executions.capacity },
    configs: raw.configs.map((c) =>
      CallbackConfig.parse({
        id: c.id ?? stableConfigId(c["tenant-id"], c.name),
        tenant_id: c["tenant-id"],
        name: c.name,
        enabled: c.enabled,
        secret: c.secret && c.secret.length > 0 ? c.secret : null,
        signing_scheme: c["signing-scheme"],
        additional_secrets: c["additional-secrets"],
        signature_header: c["signature-header"] ?? null,
        ...retryPlanOf(c, raw.retry.schedule),
        rate_limit: rateLimitOf(c["rate-limit"]),
        tls: receiverTlsOf(raw.http.tls, c.tls),
        send_trace_context: String(c["send-trace-context"] ?? raw.tracing["send-trace-context"]) === "true",
        topics: c.topics,
        authorized_domains: c["authorized-domains"],
        subscriptions: c.subscriptions.map((s) => ({
          event_type: s["event-type"],
          target_url: s["target-url"],
          headers: s.headers,
          rate_limit: rateLimitOf(s["rate-limit"]),
          format: s.format,
          filter: s.filter ?? null,
        })),
      }),
    ),
  };
}

/**
 * Which retry rule a config follows: its own retry-schedule; else its own max-attempts/backoff-ms
 * (pyfly's keys); else the global retry.schedule; else pyfly's defaults (5 attempts, 5 s doubling).
 */
function retryPlanOf(
  c: RawCallbackConfig,
  globalSchedule: number[] | undefined,
): { max_attempts: number; backoff_ms: number; retry_schedule: number[] | null } {
  const pyflyKeys = c["max-attempts"] !== undefined || c["backoff-ms"] !== undefined;
  const schedule = c["retry-schedule"] ?? (pyflyKeys ? undefined : globalSchedule);
  if (schedule !== undefined) return { max_attempts: schedule.length + 1, backoff_ms: 0, retry_schedule: schedule };
  return { max_attempts: c["max-attempts"] ?? 5, backoff_ms: c["backoff-ms"] ?? 5000, retry_schedule: null };
}

function rateLimitOf(raw: { "per-second": number; burst: number } | undefined): RateLimit | null {
  return raw === undefined ? null : { per_second: raw["per-second"], burst: raw.burst };
}

type RawTls = NonNullable<RawCallbacks["http"]["tls"]>;

/** http.tls, with a config's own keys over it; null when neither sets anything. */
function receiverTlsOf(global: RawTls | undefined, own: RawTls | undefined): ReceiverTls | null {
  if (global === undefined && own === undefined) return null;
  const pick = (key: keyof RawTls) => own?.[key] ?? global?.[key];
  return {
    client_cert_file: pick("client-cert-file") ?? null,
    client_key_file: pick("client-key-file") ?? null,
    ca_file: pick("ca-file") ?? null,
    min_version: (pick("min-version") as ReceiverTls["min_version"] | undefined) ?? "TLSv1.2",
  };
}
