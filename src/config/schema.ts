import { z } from "zod";
import { headerNameProblem, headerValueProblem } from "../domain/header-rules.js";
import { SIGNING_SCHEMES } from "../domain/models.js";
import { DELIVERY_FORMATS } from "../delivery/cloudevent-format.js";
import { parseProxyUrl, ProxyUrlError } from "../delivery/proxy/proxy-route.js";
import { compileFilter, FilterError } from "../domain/payload-filter.js";
import { DURATION_FORMS, parseDurationMs } from "./durations.js";

/*
 * The configuration as users write it (kebab-case keys under pyfly.callbacks) and as the code reads
 * it (camelCase settings, snake_case models mirroring pyfly's). Strict objects: a misspelt key is an
 * error rather than a silently ignored setting. Environment values arrive as strings, so scalars
 * accept their string spelling too.
 *
 * Every key also carries its reference entry (the `reference` registry below): a one-line
 * description and, recorded by the helpers from their own arguments, its type, limits and default.
 * scripts/config-reference.mjs walks the schema and writes docs/configuration.md and
 * docs/application.schema.json from it; test/unit/config-reference.test.ts fails when they drift.
 */

/** How a key is written: the reference's type column and the JSON Schema both derive from it. */
export type ValueType =
  | { kind: "bool"; strings: readonly string[] }
  | { kind: "duration" }
  | { kind: "integer"; min: number; max: number }
  | { kind: "number"; min: number; max: number; exclusiveMin?: boolean }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "string"; nonEmpty: boolean; label?: string; pattern?: string }
  | { kind: "list"; of: "string" | "duration"; commaSeparated: boolean; maxItems?: number; label?: string }
  | { kind: "headers" }
  | { kind: "filter" };

export interface ReferenceEntry {
  /** One line: the reference table's description and the editor's hover text. */
  description?: string;
  /** Leaves only: how the value is written. */
  type?: ValueType;
  /** The default the schema itself applies, as YAML (the reference test parses it and compares). */
  default?: string;
  /** What applies when the key is unset, decided outside the schema (load.ts), as Markdown. */
  unset?: string;
  /** A conventional environment variable that also sets the key, as Markdown. */
  env?: string;
}

/** The configuration reference: metadata only, read by scripts/config-reference.mjs; never by the loader. */
export const reference = z.registry<ReferenceEntry>();

/** Adds to a schema's reference entry and returns the same schema (no wrapper, no behaviour). */
const ref = <T extends z.ZodType>(schema: T, entry: ReferenceEntry): T => {
  reference.add(schema, { ...reference.get(schema), ...entry });
  return schema;
};

/** A duration as the reference writes it: the largest unit that divides it ("10s", "1m", "500ms"). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const yamlList = (items: readonly string[]) => `[${items.join(", ")}]`;

const duration = (defaultMs: number) =>
  ref(
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
      .transform((ms) => ms ?? defaultMs),
    { type: { kind: "duration" }, default: formatDuration(defaultMs) },
  );

const BOOL_STRINGS = ["true", "false", "TRUE", "FALSE", "True", "False"] as const;

const bool = (defaultValue: boolean) =>
  ref(
    z
      .union([z.boolean(), z.enum(BOOL_STRINGS)], {
        error: "expected true or false",
      })
      .transform((v) => (typeof v === "boolean" ? v : v.toLowerCase() === "true"))
      .optional()
      .transform((v) => v ?? defaultValue),
    { type: { kind: "bool", strings: BOOL_STRINGS }, default: String(defaultValue) },
  );

const int = <D extends number | undefined>(min: number, defaultValue: D, max = Number.MAX_SAFE_INTEGER) =>
  ref(
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
      .transform((v): number | D => v ?? defaultValue),
    { type: { kind: "integer", min, max }, ...(defaultValue === undefined ? {} : { default: String(defaultValue) }) },
  );

const fraction = (defaultValue: number) =>
  ref(
    z
      .union([z.number(), z.string().regex(/^\s*\d+(\.\d+)?\s*$/, { error: "expected a number between 0 and 1" })], {
        error: "expected a number between 0 and 1",
      })
      .transform(Number)
      .pipe(z.number().min(0, { error: "expected a number between 0 and 1" }).max(1, { error: "expected a number between 0 and 1" }))
      .optional()
      .transform((v) => v ?? defaultValue),
    { type: { kind: "number", min: 0, max: 1 }, default: String(defaultValue) },
  );

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
const rateLimitSchema = ref(
  z
    .strictObject({
      "per-second": ref(
        z
          .union([z.number(), z.string().regex(/^\s*\d+(\.\d+)?\s*$/, { error: "expected a number > 0" })], {
            error: "expected a number > 0",
          })
          .transform(Number)
          .pipe(z.number().positive({ error: "expected a number > 0" }).max(1_000_000, { error: "expected a number <= 1000000" })),
        {
          type: { kind: "number", min: 0, exclusiveMin: true, max: 1_000_000 },
          description: "Attempts a second on average (every attempt counts, retries included).",
        },
      ),
      burst: ref(int(1, 1, 1_000_000), { description: "Attempts allowed back to back (1: evenly spaced)." }),
    })
    .optional(),
  {
    description: "A rate limit (GCRA), per replica: a delivery over it waits, spending no attempt and holding no slot. Unset: no limit.",
  },
);

const text = () => z.string({ error: "expected a string" });
const nonEmpty = () => text().trim().min(1, { error: "must not be empty" });

const STRING: ValueType = { kind: "string", nonEmpty: true };
const PEM_FILE: ValueType = { kind: "string", nonEmpty: true, label: "path (PEM)" };

/** A non-empty string with a default: stated once, here, for the schema and the reference. */
const stringOr = (base: z.ZodString, defaultValue: string, options: { normalise?: (v: string) => string; type?: ValueType } = {}) => {
  const normalise = options.normalise ?? ((v: string) => v);
  return ref(
    base.optional().transform((v) => normalise(v ?? defaultValue)),
    { type: options.type ?? STRING, default: defaultValue },
  );
};

/** One of a set of strings, with a default. */
const choice = <const T extends readonly [string, ...string[]]>(values: T, defaultValue: T[number]) =>
  ref(
    z
      .enum(values, { error: `expected one of ${values.join(", ")}` })
      .optional()
      .transform((v) => v ?? defaultValue),
    { type: { kind: "enum", values }, default: defaultValue },
  );

/** A list (of objects, or of values given one by one), empty when absent. */
const listOf = <T extends z.ZodType>(element: T, error: string) =>
  ref(
    z
      .array(element, { error })
      .optional()
      .transform((v) => v ?? []),
    { default: "[]" },
  );

/** A list of strings, also written as one comma-separated string (the usual env form). */
const stringList = (defaultValue: string[], label?: string) =>
  ref(
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
      .transform((v) => v ?? defaultValue),
    { type: { kind: "list", of: "string", commaSeparated: true, ...(label ? { label } : {}) }, default: yamlList(defaultValue) },
  );

// Cast: every field of a section is optional, which the generic signature cannot see.
const section = <T extends z.ZodRawShape>(description: string, shape: T) =>
  ref(z.strictObject(shape).prefault({} as never), { description });

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

// The outgoing header rule (domain/header-rules.ts): a value the sender would refuse is
// refused here, at load, rather than failing every delivery of the subscription.
const headerMap = ref(
  z
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
    .transform((v) => v ?? {}),
  {
    type: { kind: "headers" },
    default: "{}",
    description: "Extra request headers: RFC 9110 token names, printable ASCII values; not the framing headers (Host, Content-Length...).",
  },
);

export const DEFAULT_TIERS_MS = [10_000, 60_000, 600_000, 3_600_000];

export const ORDERINGS = ["none", "key", "partition"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

// Compiled here to check it (the error names the key path inside the filter); routing compiles
// the same spec again once, when the configs are loaded into the repository.
const payloadFilter = ref(
  z
    .record(z.string(), z.unknown(), { error: "expected a filter: a mapping of paths (payload.x, headers.y) and $and/$or/$not" })
    .superRefine((spec, ctx) => {
      try {
        compileFilter(spec);
      } catch (error) {
        if (!(error instanceof FilterError)) throw error;
        ctx.addIssue({ code: "custom", path: error.path === "" ? [] : [error.path], message: error.message });
      }
    })
    .optional(),
  {
    type: { kind: "filter" },
    unset: "every event of the type",
    description: "Which events of the type it wants, in MongoDB's query language over `payload.*` and `headers.*` paths.",
  },
);

const subscriptionSchema = z.strictObject({
  "event-type": ref(nonEmpty(), {
    type: STRING,
    description: 'The event type it receives: an exact type or `"*"` for all.',
  }),
  "target-url": ref(httpUrl, {
    type: { kind: "string", nonEmpty: true, label: "http(s) URL", pattern: "^[Hh][Tt][Tt][Pp][Ss]?://" },
    description: "Where the webhook is POSTed: an absolute `http://` or `https://` URL without credentials.",
  }),
  headers: headerMap,
  "rate-limit": rateLimitSchema,
  format: ref(choice(DELIVERY_FORMATS, "pyfly"), {
    description: "The request's form: pyfly's, or a CloudEvent in binary or structured mode.",
  }),
  filter: payloadFilter,
});

export const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;

/**
 * TLS towards receivers: files (Secret mounts), read and checked at load, reloaded when they change.
 * Built once for http.tls and once for a config's tls, whose unset keys inherit http.tls's.
 */
const receiverTls = (scope: "http" | "config") => {
  const over = (key: string, otherwise?: string) =>
    scope === "config" ? { unset: `\`http.tls.${key}\`${otherwise ? `, else ${otherwise}` : ""}` } : otherwise ? { unset: otherwise } : {};
  return z.strictObject({
    "client-cert-file": ref(nonEmpty().optional(), {
      type: PEM_FILE,
      ...over("client-cert-file"),
      description: "Client certificate for mTLS, reloaded when the file changes.",
    }),
    "client-key-file": ref(nonEmpty().optional(), {
      type: PEM_FILE,
      ...over("client-key-file"),
      description: "The client certificate's key.",
    }),
    "ca-file": ref(nonEmpty().optional(), {
      type: { kind: "string", nonEmpty: true, label: "path (PEM bundle)" },
      ...over("ca-file"),
      description: "CA certificates added to the public roots.",
    }),
    "min-version": ref(z.enum(TLS_VERSIONS, { error: `expected one of ${TLS_VERSIONS.join(", ")}` }).optional(), {
      type: { kind: "enum", values: TLS_VERSIONS },
      ...over("min-version", "`TLSv1.2`"),
      description: "The lowest TLS version offered.",
    }),
  });
};

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
  ref(
    durationList()
      .refine((list) => list.length <= MAX_SCHEDULE_ENTRIES, { error: `at most ${MAX_SCHEDULE_ENTRIES} entries` })
      .optional(),
    { type: { kind: "list", of: "duration", commaSeparated: true, maxItems: MAX_SCHEDULE_ENTRIES } },
  );

const authorizedDomainSchema = z.strictObject({
  domain: ref(nonEmpty(), { type: STRING, description: "A host the config's target URLs may name." }),
  description: ref(
    text()
      .optional()
      .transform((v) => v ?? ""),
    { type: { kind: "string", nonEmpty: false }, default: '""', description: "Free text, for people." },
  ),
});

const TRUE_FALSE = ["true", "false"] as const;

const callbackConfigSchema = z.strictObject({
  id: ref(nonEmpty().optional(), {
    type: STRING,
    unset: "a stable UUID-shaped hash of (`tenant-id`, `name`)",
    description: "The config's id; delivery ids derive from it, so it should not change.",
  }),
  "tenant-id": ref(nonEmpty(), { type: STRING, description: "The tenant, as it appears in the record's tenant header." }),
  name: ref(nonEmpty(), { type: STRING, description: "The config's name, unique per tenant." }),
  enabled: ref(bool(true), { description: "A disabled config receives nothing." }),
  secret: ref(text().optional(), {
    type: { kind: "string", nonEmpty: false },
    description: "The signing secret (use `${VAR}`). Without one, webhooks go out unsigned, as in pyfly.",
  }),
  "signing-scheme": ref(choice(SIGNING_SCHEMES, "pyfly"), {
    description: "How requests are signed; `standard-webhooks` needs a `whsec_<base64>` secret.",
  }),
  "additional-secrets": ref(listOf(nonEmpty(), "expected a list of secrets"), {
    type: { kind: "list", of: "string", commaSeparated: false },
    description: "`pyfly-timestamped` and `standard-webhooks` only: also signed with these, for rotation.",
  }),
  // pyfly-timestamped and github sign in one header; a receiver may expect it under another name.
  "signature-header": ref(
    nonEmpty()
      .superRefine((name, ctx) => {
        const problem = headerNameProblem(name);
        if (problem) ctx.addIssue({ code: "custom", message: `header name ${problem}` });
      })
      .optional(),
    {
      type: { kind: "string", nonEmpty: true, label: "header name", pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
      unset: "the scheme's",
      description: "`pyfly-timestamped` and `github` only: the header the signature goes in (e.g. `Stripe-Signature`).",
    },
  ),
  // Unset here: the global retry.schedule if there is one, else pyfly's 5 and 5000 (load.ts).
  "max-attempts": ref(int(0, undefined, 100), {
    unset: "`retry.schedule` if set, else `5`",
    description: "Attempts in all; `0` means FAILED with 0 attempts, as in pyfly.",
  }),
  "backoff-ms": ref(int(0, undefined), {
    unset: "`retry.schedule` if set, else `5000`",
    description: "The wait before attempt n+1 is `min(backoff-ms × 2^(n−1), 300000)` ms.",
  }),
  // An explicit schedule (Svix-style) instead of max-attempts / backoff-ms: attempts = entries + 1.
  "retry-schedule": ref(retrySchedule(), {
    unset: "`retry.schedule`, else none",
    description: "Explicit waits before each retry (attempts = entries + 1), instead of `max-attempts`/`backoff-ms`.",
  }),
  "rate-limit": rateLimitSchema,
  // Over http.tls key by key: a config may add its client certificate to a shared CA.
  tls: ref(receiverTls("config").optional(), { description: "TLS towards this config's receivers, key by key over `http.tls`." }),
  // Unset: tracing.send-trace-context. Receivers are outside the trust boundary: off by default.
  "send-trace-context": ref(z.union([z.boolean(), z.enum(TRUE_FALSE)], { error: "expected true or false" }).optional(), {
    type: { kind: "bool", strings: TRUE_FALSE },
    unset: "`tracing.send-trace-context`",
    description: "With tracing on: whether this config's webhooks carry `traceparent` and `tracestate`.",
  }),
  // Tenant binding: the event topics this config accepts the tenant's records from (empty: any).
  topics: ref(stringList([], "list of topic names"), {
    description: "Tenant binding: the event topics this config accepts the tenant's records from; empty: every consumed topic.",
  }),
  "authorized-domains": ref(listOf(authorizedDomainSchema, "expected a list"), {
    description: "Hosts the config's target URLs may name; empty: any host the network guard allows.",
  }),
  subscriptions: ref(listOf(subscriptionSchema, "expected a list"), {
    description: "Who receives which event type, and how.",
  }),
});

const CLOUDEVENTS_ATTRIBUTE = /^[a-z0-9]{1,20}$/;

const kafkaSchema = section("The Kafka consumer of the event topics.", {
  brokers: ref(stringList(["localhost:9092"], "list of host:port"), {
    env: "`KAFKA_BROKERS` (comma-separated, wins)",
    description: "Bootstrap brokers.",
  }),
  "client-id": ref(stringOr(nonEmpty(), "callback-sidecar"), { description: "The Kafka client id." }),
  "group-id": ref(stringOr(nonEmpty(), "callback-sidecar"), {
    description: "The event consumers' group; the retry consumers use `<group-id>.retry`. Run `replay` with the same value.",
  }),
  topics: ref(stringList([], "list of topic names"), {
    description: "The event topics (this or `topic-pattern`, not both, when `enabled`).",
  }),
  "topic-pattern": ref(
    nonEmpty()
      .superRefine((v, ctx) => {
        try {
          new RegExp(v);
        } catch {
          ctx.addIssue({ code: "custom", message: "not a valid regular expression" });
        }
      })
      .optional(),
    {
      type: { kind: "string", nonEmpty: true, label: "regular expression" },
      description: "The event topics as one JavaScript regular expression (e.g. `^events\\..*`).",
    },
  ),
  "from-beginning": ref(bool(false), { description: "Where a consumer group without committed offsets starts." }),
  "tenant-header": ref(stringOr(nonEmpty(), "x-tenant-id", { normalise: (v) => v.toLowerCase() }), {
    description: "The record header naming the tenant (lower-cased, matched case-insensitively).",
  }),
  "event-type-header": ref(stringOr(nonEmpty(), "x-event-type", { normalise: (v) => v.toLowerCase() }), {
    description: "The record header naming the event type (lower-cased, matched case-insensitively).",
  }),
  // Structured CloudEvents: the extension attribute naming the tenant (the tenant header if absent).
  "cloudevents-tenant-attribute": ref(
    stringOr(
      nonEmpty().regex(CLOUDEVENTS_ATTRIBUTE, { error: "a CloudEvents attribute name: lower-case letters and digits, at most 20" }),
      "tenantid",
      { type: { kind: "string", nonEmpty: true, label: "CloudEvents attribute name", pattern: CLOUDEVENTS_ATTRIBUTE.source } },
    ),
    { description: "Structured CloudEvents: the extension attribute naming the tenant (the tenant header if absent)." },
  ),
  // The producer's own event id (CloudEvents' ce_id when absent): delivery ids derive from it.
  "event-id-header": ref(stringOr(nonEmpty(), "x-event-id", { normalise: (v) => v.toLowerCase() }), {
    description: "The record header with the producer's event id (else CloudEvents' `ce_id`); delivery ids derive from it.",
  }),
  "max-in-flight": ref(int(1, 1024, 100_000), {
    description: "Records running at once per consumer (the event consumer and the retry consumer each).",
  }),
  // Unset: 2 × max-in-flight (kafka/consumer-runner.ts), measured in docs/operations.md#sizing.
  "max-buffered": ref(int(1, undefined, 10_000_000), {
    unset: "2 × `max-in-flight`",
    description:
      "Event records fetched and not yet finished, all partitions together (at least 64 each), above which fetching pauses: what bounds the memory.",
  }),
  ordering: ref(choice(ORDERINGS, "none"), {
    description: "`none`: concurrent; `key`: one at a time per record key and partition; `partition`: one at a time per partition.",
  }),
  "session-timeout": ref(duration(30_000), { description: "The kafkajs group session timeout; readiness uses it too." }),
  "connection-timeout": ref(duration(10_000), { description: "The kafkajs broker connection timeout." }),
  ssl: section("TLS to the brokers.", {
    enabled: ref(bool(false), { description: "Connect to the brokers over TLS (SASL credentials are sent over TLS only)." }),
    "ca-file": ref(nonEmpty().optional(), { type: PEM_FILE, description: "CA certificates for the brokers." }),
    "cert-file": ref(nonEmpty().optional(), { type: PEM_FILE, description: "Client certificate." }),
    "key-file": ref(nonEmpty().optional(), { type: PEM_FILE, description: "The client certificate's key." }),
    "reject-unauthorized": ref(bool(true), { description: "Verify the brokers' certificates." }),
  }),
  sasl: section("SASL authentication to the brokers.", {
    mechanism: ref(choice(["none", "plain", "scram-sha-256", "scram-sha-512"], "none"), {
      description: "SASL PLAIN or SCRAM; any but `none` needs `username` and `password`.",
    }),
    username: ref(text().optional(), { type: { kind: "string", nonEmpty: false }, description: "SASL user name." }),
    password: ref(text().optional(), { type: { kind: "string", nonEmpty: false }, description: "SASL password (use `${VAR}`)." }),
  }),
});

const callbacksSchema = z.strictObject({
  enabled: ref(bool(false), {
    description: "`run` consumes only when true; when false it logs that it has nothing to do and exits 0, as pyfly does.",
  }),
  "shutdown-grace": ref(duration(25_000), { description: "How long SIGTERM/SIGINT waits for in-flight work." }),
  "log-level": ref(choice(LOG_LEVELS, "info"), { env: "`LOG_LEVEL` (wins)", description: "The level of the JSON logs." }),
  http: section("The webhook requests.", {
    timeout: ref(duration(10_000), {
      description: "One deadline for the whole attempt: DNS, connect, sending, response headers and body. A timeout is retryable.",
    }),
    // Also each host's share of in-flight deliveries: an attempt holds a connection for its whole
    // life, so no delivery waits for a pooled connection inside its own timeout.
    "max-connections-per-host": ref(int(1, 64, 10_000), {
      description: "Keep-alive connections per target `host:port`, and so each host's share of in-flight deliveries.",
    }),
    "allow-private-networks": ref(bool(false), {
      description: "Let the network guard allow every address, loopback and link-local included (development, trusted networks).",
    }),
    "allowed-cidrs": ref(stringList([], "list of CIDRs"), {
      description: "Single ranges the network guard allows (valid networks, no host bits).",
    }),
    "dry-run": ref(bool(false), {
      description: "Log each would-be request at `info` and open no connection; every attempt counts as delivered.",
    }),
    // Unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment (load.ts).
    proxy: section("An HTTP CONNECT proxy for deliveries; the network guard still decides which addresses are dialled.", {
      url: ref(proxyUrl.optional(), {
        type: { kind: "string", nonEmpty: true, label: "`http://[user:password@]host:port`" },
        unset: "`HTTPS_PROXY` / `HTTP_PROXY` (lower-case names first)",
        description: "The CONNECT proxy; credentials in the URL are sent as `Proxy-Authorization: Basic`, never logged.",
      }),
      "no-proxy": ref(
        z
          .union([z.array(nonEmpty()), text()], { error: "expected a list of hosts, domains or CIDRs" })
          .optional()
          .transform((v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()) : v)),
        {
          type: {
            kind: "list",
            of: "string",
            commaSeparated: true,
            label: "list of hosts, `.domains`, IPs, CIDRs (`:port` optional; `*`: all)",
          },
          unset: "`NO_PROXY`",
          description: "Targets that bypass the proxy.",
        },
      ),
    }),
    tls: ref(receiverTls("http").optional(), {
      description: "TLS towards receivers, for every config: client certificate (mTLS), extra CAs, minimum version.",
    }),
    "circuit-breaker": section("One breaker per target `host:port`.", {
      "failure-threshold": ref(int(1, 5, 1_000_000), {
        description: "Consecutive transport failures that open it (overlapping attempts count once); any HTTP response resets it.",
      }),
      "recovery-timeout": ref(duration(30_000), {
        description: "How long it stays open before exactly one probe goes through.",
      }),
    }),
  }),
  retry: section("Retries: waits in process, then in Kafka.", {
    jitter: ref(fraction(0), {
      description: "The fraction by which each backoff wait is randomly shortened; 0 keeps pyfly's exact schedule.",
    }),
    "in-process-budget": ref(duration(1_000), {
      description: "How long a fresh delivery may wait in process (backoff, rate limit, busy host) before it waits in Kafka.",
    }),
    // The schedule of every config that sets none of retry-schedule, max-attempts, backoff-ms.
    schedule: ref(retrySchedule(), {
      unset: "none: pyfly's rule",
      description: "The retry schedule of every config that sets none of `retry-schedule`, `max-attempts`, `backoff-ms`.",
    }),
    // Delay tiers: waits longer than the first go to "<retry topic>.<tier>" topics, not to memory.
    tiers: ref(
      durationList()
        .optional()
        .transform((v) => v ?? DEFAULT_TIERS_MS),
      {
        type: { kind: "list", of: "duration", commaSeparated: true, label: "list of durations, each >= 1s" },
        default: yamlList(DEFAULT_TIERS_MS.map(formatDuration)),
        description:
          "Delay tiers: a long wait goes to the topic `<retry.topic>.<tier>`, not to memory; `[]` keeps every wait in the retry topic.",
      },
    ),
    // Unset: "<group-id>.retry" (load.ts), so deployments sharing a cluster never share retries.
    topic: ref(nonEmpty().optional(), {
      type: STRING,
      unset: "`<kafka.group-id>.retry`",
      description: "The durable retry topic, created at start if missing.",
    }),
  }),
  "dead-letter": section("Deliveries that failed for good.", {
    topic: ref(nonEmpty().optional(), {
      type: STRING,
      unset: "`<kafka.group-id>.dead-letter`",
      description: "The dead-letter topic, created at start if missing.",
    }),
  }),
  // OpenTelemetry (OTLP/HTTP): off by default; exporter settings come from the OTEL_* variables.
  tracing: section("OpenTelemetry over OTLP/HTTP; the exporter is configured by the standard `OTEL_*` variables.", {
    enabled: ref(bool(false), { description: "Export spans; off, the OpenTelemetry SDK is not even loaded." }),
    // Whether webhooks carry traceparent/tracestate, for configs that do not say.
    "send-trace-context": ref(bool(false), {
      description: "Whether webhooks carry `traceparent` / `tracestate`, for configs that do not say.",
    }),
  }),
  // Keys that sign retry and dead-letter records (first signs, all verify); empty: derived per config.
  handoff: section("The seal of retry records and dead letters.", {
    keys: ref(stringList([], "list of strings, each >= 32 bytes"), {
      unset: "`[]`: a key derived per config from its secret",
      description: "HMAC keys (use `${VAR}`): the first signs, every one verifies, so rotate by putting the new key first.",
    }),
  }),
  kafka: kafkaSchema,
  server: section("The admin HTTP server (metrics, probes, `/executions`).", {
    port: ref(int(0, 8080, 65_535), { description: "The admin port; `0` picks a free port." }),
    host: ref(stringOr(nonEmpty(), "0.0.0.0"), { description: "The address it listens on." }),
    // /executions shows tenants' traffic: off unless asked for, and then behind a bearer token.
    executions: section("The `/executions` endpoint: `404` unless enabled, then only with `Authorization: Bearer <token>`.", {
      enabled: ref(bool(false), { description: "Serve `/executions` (needs `token`)." }),
      token: ref(text().optional(), {
        type: { kind: "string", nonEmpty: false },
        description: "The bearer token (use `${VAR}`; 16 bytes or more).",
      }),
      "include-payloads": ref(bool(false), { description: "Include payloads in `/executions` answers." }),
    }),
  }),
  executions: section("The in-memory execution window behind `/executions`.", {
    capacity: ref(int(1, 10_000, 10_000_000), { description: "Executions kept per replica, oldest evicted first." }),
  }),
  configs: ref(listOf(callbackConfigSchema, "expected a list of callback configs"), {
    description: "Tenant configs: the fields of pyfly's `CallbackConfig`, in kebab-case.",
  }),
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
