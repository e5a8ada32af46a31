import { z } from "zod";
import { headerNameProblem, headerValueProblem } from "../delivery/http-header-check.js";
import { SIGNATURE_SCHEMES } from "../delivery/signing/index.js";
import { DELIVERY_FORMATS } from "../delivery/cloudevent-format.js";
import { parseProxyUrl, ProxyUrlError } from "../delivery/proxy/proxy-route.js";
import { compileFilter, FilterError } from "../domain/payload-filter.js";
import { DURATION_FORMS, parseDurationMs } from "./durations.js";

/*
 * The configuration as users write it (kebab-case keys under pyfly.callbacks) and as the code reads
 * it (camelCase settings, snake_case models mirroring pyfly's). Strict objects: a misspelt key is an
 * error rather than a silently ignored setting. Environment values arrive as strings, so scalars
 * accept their string spelling too.
 */

const duration = (defaultMs: number) =>
  z
    .unknown()
    .transform((value, ctx) => {
      const ms = parseDurationMs(value);
      if (ms === undefined) {
        ctx.addIssue({ code: "custom", message: `expected ${DURATION_FORMS}` });
        return z.NEVER;
      }
      return ms;
    })
    .optional()
    .transform((ms) => ms ?? defaultMs);

const bool = (defaultValue: boolean) =>
  z
    .union([z.boolean(), z.enum(["true", "false", "TRUE", "FALSE", "True", "False"])], {
      error: "expected true or false",
    })
    .transform((v) => (typeof v === "boolean" ? v : v.toLowerCase() === "true"))
    .optional()
    .transform((v) => v ?? defaultValue);

const int = <D extends number | undefined>(min: number, defaultValue: D, max = Number.MAX_SAFE_INTEGER) =>
  z
    .union([z.number(), z.string().regex(/^\s*-?\d+\s*$/, { error: `expected an integer >= ${min}` })], {
      error: `expected an integer >= ${min}`,
    })
    .transform(Number)
    .pipe(
      z
        .number()
        .int({ error: `expected an integer >= ${min}` })
        .min(min, { error: `expected an integer >= ${min}` })
        .max(max, { error: `expected an integer <= ${max}` }),
    )
    .optional()
    .transform((v): number | D => v ?? defaultValue);

const fraction = (defaultValue: number) =>
  z
    .union([z.number(), z.string().regex(/^\s*\d+(\.\d+)?\s*$/, { error: "expected a number between 0 and 1" })], {
      error: "expected a number between 0 and 1",
    })
    .transform(Number)
    .pipe(z.number().min(0, { error: "expected a number between 0 and 1" }).max(1, { error: "expected a number between 0 and 1" }))
    .optional()
    .transform((v) => v ?? defaultValue);

/** A list of durations (ms), each written as a duration; also one comma-separated string. */
const durationList = () =>
  z.union([z.array(z.unknown()), z.string()], { error: `expected a list of durations, each ${DURATION_FORMS}` }).transform((value, ctx) => {
    const items = Array.isArray(value) ? value : value.split(",").map((s) => s.trim());
    const out: number[] = [];
    items.forEach((item, i) => {
      const ms = parseDurationMs(item);
      if (ms === undefined) ctx.addIssue({ code: "custom", path: [i], message: `expected ${DURATION_FORMS}` });
      else out.push(Math.round(ms));
    });
    return out;
  });

// GCRA: `per-second` on average, `burst` back to back (1: evenly spaced, never two at once).
const rateLimitSchema = z
  .strictObject({
    "per-second": z
      .union([z.number(), z.string().regex(/^\s*\d+(\.\d+)?\s*$/, { error: "expected a number > 0" })], { error: "expected a number > 0" })
      .transform(Number)
      .pipe(z.number().positive({ error: "expected a number > 0" }).max(1_000_000, { error: "expected a number <= 1000000" })),
    burst: int(1, 1, 1_000_000),
  })
  .optional();

const text = () => z.string({ error: "expected a string" });
const nonEmpty = () => text().trim().min(1, { error: "must not be empty" });

/** A list of strings, also written as one comma-separated string (the usual env form). */
const stringList = (defaultValue: string[]) =>
  z
    .union([z.array(nonEmpty()), text()], { error: "expected a list of strings" })
    .transform((v) =>
      Array.isArray(v)
        ? v
        : v
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s.length > 0),
    )
    .optional()
    .transform((v) => v ?? defaultValue);

// Cast: every field of a section is optional, which the generic signature cannot see.
const section = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).prefault({} as never);

const httpUrl = nonEmpty().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected an absolute http:// or https:// URL" });
    return;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    ctx.addIssue({ code: "custom", message: `expected an http:// or https:// URL, got scheme ${url.protocol}` });
  } else if (url.username || url.password) {
    ctx.addIssue({ code: "custom", message: "credentials in the URL are not allowed; use subscription headers" });
  }
});

// The outgoing header rule (delivery/http-header-check.ts): a value the sender would refuse is
// refused here, at load, rather than failing every delivery of the subscription.
const headerMap = z
  .record(text(), text(), { error: "expected a map of header names to string values" })
  .superRefine((headers, ctx) => {
    for (const [name, value] of Object.entries(headers)) {
      const nameProblem = headerNameProblem(name);
      if (nameProblem) ctx.addIssue({ code: "custom", path: [name], message: `header name ${nameProblem}` });
      const valueProblem = headerValueProblem(value);
      if (valueProblem) ctx.addIssue({ code: "custom", path: [name], message: `header value ${valueProblem}` });
    }
  })
  .optional()
  .transform((v) => v ?? {});

export const DEFAULT_TIERS_MS = [10_000, 60_000, 600_000, 3_600_000];

export const ORDERINGS = ["none", "key", "partition"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

// Compiled here to check it (the error names the key path inside the filter); routing compiles
// the same spec again once, when the configs are loaded into the repository.
const payloadFilter = z
  .record(z.string(), z.unknown(), { error: "expected a filter: a mapping of paths (payload.x, headers.y) and $and/$or/$not" })
  .superRefine((spec, ctx) => {
    try {
      compileFilter(spec);
    } catch (error) {
      if (!(error instanceof FilterError)) throw error;
      ctx.addIssue({ code: "custom", path: error.path === "" ? [] : [error.path], message: error.message });
    }
  })
  .optional();

const subscriptionSchema = z.strictObject({
  "event-type": nonEmpty(),
  "target-url": httpUrl,
  headers: headerMap,
  "rate-limit": rateLimitSchema,
  format: z
    .enum(DELIVERY_FORMATS, { error: `expected one of ${DELIVERY_FORMATS.join(", ")}` })
    .optional()
    .transform((v) => v ?? "pyfly"),
  filter: payloadFilter,
});

export const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;

/** TLS towards receivers: files (Secret mounts), read and checked at load, reloaded when they change. */
const receiverTlsSchema = z.strictObject({
  "client-cert-file": nonEmpty().optional(),
  "client-key-file": nonEmpty().optional(),
  "ca-file": nonEmpty().optional(),
  "min-version": z.enum(TLS_VERSIONS, { error: `expected one of ${TLS_VERSIONS.join(", ")}` }).optional(),
});

const proxyUrl = nonEmpty().superRefine((value, ctx) => {
  try {
    parseProxyUrl(value);
  } catch (error) {
    if (!(error instanceof ProxyUrlError)) throw error;
    ctx.addIssue({ code: "custom", message: error.message });
  }
});

const MAX_SCHEDULE_ENTRIES = 100;
const retrySchedule = () =>
  durationList()
    .refine((list) => list.length <= MAX_SCHEDULE_ENTRIES, { error: `at most ${MAX_SCHEDULE_ENTRIES} entries` })
    .optional();

const authorizedDomainSchema = z.strictObject({
  domain: nonEmpty(),
  description: text()
    .optional()
    .transform((v) => v ?? ""),
});

const callbackConfigSchema = z.strictObject({
  id: nonEmpty().optional(),
  "tenant-id": nonEmpty(),
  name: nonEmpty(),
  enabled: bool(true),
  secret: text().optional(),
  "signing-scheme": z
    .enum(SIGNATURE_SCHEMES, { error: `expected one of ${SIGNATURE_SCHEMES.join(", ")}` })
    .optional()
    .transform((v) => v ?? "pyfly"),
  "additional-secrets": z
    .array(nonEmpty(), { error: "expected a list of secrets" })
    .optional()
    .transform((v) => v ?? []),
  // pyfly-timestamped and github sign in one header; a receiver may expect it under another name.
  "signature-header": nonEmpty()
    .superRefine((name, ctx) => {
      const problem = headerNameProblem(name);
      if (problem) ctx.addIssue({ code: "custom", message: `header name ${problem}` });
    })
    .optional(),
  // Unset here: the global retry.schedule if there is one, else pyfly's 5 and 5000 (load.ts).
  "max-attempts": int(0, undefined, 100),
  "backoff-ms": int(0, undefined),
  // An explicit schedule (Svix-style) instead of max-attempts / backoff-ms: attempts = entries + 1.
  "retry-schedule": retrySchedule(),
  "rate-limit": rateLimitSchema,
  // Over http.tls key by key: a config may add its client certificate to a shared CA.
  tls: receiverTlsSchema.optional(),
  // Unset: tracing.send-trace-context. Receivers are outside the trust boundary: off by default.
  "send-trace-context": z.union([z.boolean(), z.enum(["true", "false"])], { error: "expected true or false" }).optional(),
  // Tenant binding: the event topics this config accepts the tenant's records from (empty: any).
  topics: stringList([]),
  "authorized-domains": z
    .array(authorizedDomainSchema, { error: "expected a list" })
    .optional()
    .transform((v) => v ?? []),
  subscriptions: z
    .array(subscriptionSchema, { error: "expected a list" })
    .optional()
    .transform((v) => v ?? []),
});

const kafkaSchema = section({
  brokers: stringList(["localhost:9092"]),
  "client-id": nonEmpty()
    .optional()
    .transform((v) => v ?? "callback-sidecar"),
  "group-id": nonEmpty()
    .optional()
    .transform((v) => v ?? "callback-sidecar"),
  topics: stringList([]),
  "topic-pattern": nonEmpty()
    .superRefine((v, ctx) => {
      try {
        new RegExp(v);
      } catch {
        ctx.addIssue({ code: "custom", message: "not a valid regular expression" });
      }
    })
    .optional(),
  "from-beginning": bool(false),
  "tenant-header": nonEmpty()
    .optional()
    .transform((v) => (v ?? "x-tenant-id").toLowerCase()),
  "event-type-header": nonEmpty()
    .optional()
    .transform((v) => (v ?? "x-event-type").toLowerCase()),
  // Structured CloudEvents: the extension attribute naming the tenant (the tenant header if absent).
  "cloudevents-tenant-attribute": nonEmpty()
    .regex(/^[a-z0-9]{1,20}$/, { error: "a CloudEvents attribute name: lower-case letters and digits, at most 20" })
    .optional()
    .transform((v) => v ?? "tenantid"),
  // The producer's own event id (CloudEvents' ce_id when absent): delivery ids derive from it.
  "event-id-header": nonEmpty()
    .optional()
    .transform((v) => (v ?? "x-event-id").toLowerCase()),
  "max-in-flight": int(1, 256, 100_000),
  ordering: z
    .enum(ORDERINGS, { error: `expected one of ${ORDERINGS.join(", ")}` })
    .optional()
    .transform((v) => v ?? "none"),
  "session-timeout": duration(30_000),
  "connection-timeout": duration(10_000),
  ssl: section({
    enabled: bool(false),
    "ca-file": nonEmpty().optional(),
    "cert-file": nonEmpty().optional(),
    "key-file": nonEmpty().optional(),
    "reject-unauthorized": bool(true),
  }),
  sasl: section({
    mechanism: z
      .enum(["none", "plain", "scram-sha-256", "scram-sha-512"], { error: "expected one of none, plain, scram-sha-256, scram-sha-512" })
      .optional()
      .transform((v) => v ?? "none"),
    username: text().optional(),
    password: text().optional(),
  }),
});

const callbacksSchema = z.strictObject({
  enabled: bool(false),
  "shutdown-grace": duration(25_000),
  "log-level": z
    .enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(", ")}` })
    .optional()
    .transform((v) => v ?? "info"),
  http: section({
    timeout: duration(10_000),
    // Also each host's share of in-flight deliveries: an attempt holds a connection for its whole
    // life, so no delivery waits for a pooled connection inside its own timeout.
    "max-connections-per-host": int(1, 32, 10_000),
    "allow-private-networks": bool(false),
    "allowed-cidrs": stringList([]),
    "dry-run": bool(false),
    // Unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment (load.ts).
    proxy: section({
      url: proxyUrl.optional(),
      "no-proxy": z
        .union([z.array(nonEmpty()), text()], { error: "expected a list of hosts, domains or CIDRs" })
        .optional()
        .transform((v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()) : v)),
    }),
    tls: receiverTlsSchema.optional(),
    "circuit-breaker": section({
      "failure-threshold": int(1, 5, 1_000_000),
      "recovery-timeout": duration(30_000),
    }),
  }),
  retry: section({
    jitter: fraction(0),
    "in-process-budget": duration(1_000),
    // The schedule of every config that sets none of retry-schedule, max-attempts, backoff-ms.
    schedule: retrySchedule(),
    // Delay tiers: waits longer than the first go to "<retry topic>.<tier>" topics, not to memory.
    tiers: durationList()
      .optional()
      .transform((v) => v ?? DEFAULT_TIERS_MS),
    // Unset: "<group-id>.retry" (load.ts), so deployments sharing a cluster never share retries.
    topic: nonEmpty().optional(),
  }),
  "dead-letter": section({
    topic: nonEmpty().optional(),
  }),
  // OpenTelemetry (OTLP/HTTP): off by default; exporter settings come from the OTEL_* variables.
  tracing: section({
    enabled: bool(false),
    // Whether webhooks carry traceparent/tracestate, for configs that do not say.
    "send-trace-context": bool(false),
  }),
  // Keys that sign retry and dead-letter records (first signs, all verify); empty: derived per config.
  handoff: section({
    keys: stringList([]),
  }),
  kafka: kafkaSchema,
  server: section({
    port: int(0, 8080, 65_535),
    host: nonEmpty()
      .optional()
      .transform((v) => v ?? "0.0.0.0"),
    // /executions shows tenants' traffic: off unless asked for, and then behind a bearer token.
    executions: section({
      enabled: bool(false),
      token: text().optional(),
      "include-payloads": bool(false),
    }),
  }),
  executions: section({
    capacity: int(1, 10_000, 10_000_000),
  }),
  configs: z
    .array(callbackConfigSchema, { error: "expected a list of callback configs" })
    .optional()
    .transform((v) => v ?? []),
});

/** The document: only `pyfly.callbacks` is ours; other keys of an application.yml belong to others. */
export const documentSchema = z.looseObject(
  {
    pyfly: z.looseObject({ callbacks: callbacksSchema.prefault({}) }, { error: "expected a mapping" }).prefault({}),
  },
  { error: "expected a YAML mapping at the top level" },
);

export type RawCallbacks = z.output<typeof callbacksSchema>;

/**
 * The retry and dead-letter topics: as configured, else named after the consumer group, so two
 * deployments on one cluster never read each other's retries.
 */
export function handoffTopicsOf(raw: RawCallbacks): { retry: string; deadLetter: string } {
  const group = raw.kafka["group-id"];
  return { retry: raw.retry.topic ?? `${group}.retry`, deadLetter: raw["dead-letter"].topic ?? `${group}.dead-letter` };
}
export type RawCallbackConfig = z.output<typeof callbackConfigSchema>;
export { callbacksSchema };
