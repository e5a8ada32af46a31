import { randomUUID } from "node:crypto";
import { z } from "zod";

/*
 * The pyfly.callbacks models, field for field (snake_case, as pyfly serialises them), so executions
 * read the same whichever implementation produced them. Additions beyond pyfly are marked.
 */

export const CallbackStatus = z.enum(["PENDING", "DELIVERED", "FAILED"]);
export type CallbackStatus = z.infer<typeof CallbackStatus>;

export const AuthorizedDomain = z.object({
  domain: z.string().min(1),
  description: z.string().default(""),
});
export type AuthorizedDomain = z.infer<typeof AuthorizedDomain>;

/** Beyond pyfly: at most `per_second` attempts a second on average, `burst` at once. */
export const RateLimit = z.object({
  per_second: z.number().positive(),
  burst: z.number().int().positive().default(1),
});
export type RateLimit = z.infer<typeof RateLimit>;

/** Beyond pyfly: TLS towards a config's receivers (files, e.g. Kubernetes Secret mounts). */
export const ReceiverTls = z.object({
  client_cert_file: z.string().nullable().default(null),
  client_key_file: z.string().nullable().default(null),
  ca_file: z.string().nullable().default(null),
  min_version: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2"),
});
export type ReceiverTls = z.infer<typeof ReceiverTls>;

export const CallbackSubscription = z.object({
  event_type: z.string().min(1),
  target_url: z.string().min(1),
  headers: z.record(z.string(), z.string()).default({}),
  // Beyond pyfly: this subscription's own rate limit (its config's, if any, applies too).
  rate_limit: RateLimit.nullable().default(null),
  // Beyond pyfly: the request's shape, pyfly's body or the CloudEvents HTTP binding.
  format: z.enum(["pyfly", "cloudevents-binary", "cloudevents-structured"]).default("pyfly"),
  // Beyond pyfly: which events of the type it wants (domain/payload-filter.ts); null: all.
  filter: z.record(z.string(), z.unknown()).nullable().default(null),
});
export type CallbackSubscription = z.infer<typeof CallbackSubscription>;

/** The signature schemes, in one list: the configuration, the signer and the CLI read it. */
export const SIGNING_SCHEMES = ["pyfly", "pyfly-timestamped", "github", "standard-webhooks"] as const;
export const SigningScheme = z.enum(SIGNING_SCHEMES);
export type SigningScheme = z.infer<typeof SigningScheme>;

export const CallbackConfig = z.object({
  id: z.string().default(() => randomUUID()),
  tenant_id: z.string().min(1),
  name: z.string().min(1),
  enabled: z.boolean().default(true),
  subscriptions: z.array(CallbackSubscription).default([]),
  authorized_domains: z.array(AuthorizedDomain).default([]),
  secret: z.string().nullable().default(null),
  max_attempts: z.number().int().default(5),
  backoff_ms: z.number().int().nonnegative().default(5000),
  // Beyond pyfly: the signature scheme, and older secrets still signed with during a rotation.
  signing_scheme: SigningScheme.default("pyfly"),
  additional_secrets: z.array(z.string()).default([]),
  // Beyond pyfly: the header of a one-header scheme when not its default (e.g. Stripe-Signature).
  signature_header: z.string().nullable().default(null),
  // Beyond pyfly: the event topics the tenant's records may come from for this config (empty: any).
  topics: z.array(z.string()).default([]),
  // Beyond pyfly: explicit waits (ms) before attempts 2..n; when set, it replaces max_attempts and
  // backoff_ms (attempts = its length + 1).
  retry_schedule: z.array(z.number().int().nonnegative()).nullable().default(null),
  // Beyond pyfly: one rate limit shared by all the config's subscriptions.
  rate_limit: RateLimit.nullable().default(null),
  // Beyond pyfly: client certificate, extra CAs and minimum version towards its receivers.
  tls: ReceiverTls.nullable().default(null),
  // Beyond pyfly: whether its webhooks carry W3C trace context (when tracing is on).
  send_trace_context: z.boolean().default(false),
});
export type CallbackConfig = z.infer<typeof CallbackConfig>;

/** Where an event came from; for Kafka the record's coordinates. */
export const EventSource = z.object({
  topic: z.string(),
  partition: z.number().int(),
  offset: z.string(),
});
export type EventSource = z.infer<typeof EventSource>;

export const CallbackExecution = z.object({
  id: z.string().default(() => randomUUID()),
  config_id: z.string(),
  event_type: z.string(),
  target_url: z.string(),
  payload: z.unknown(),
  status: CallbackStatus.default("PENDING"),
  attempts: z.number().int().default(0),
  last_error: z.string().nullable().default(null),
  response_status: z.number().int().nullable().default(null),
  created_at: z.string().default(() => new Date().toISOString()),
  delivered_at: z.string().nullable().default(null),
  // Beyond pyfly:
  tenant_id: z.string(),
  delivery_id: z.string(),
  source: EventSource.nullable().default(null),
  duration_ms: z.number().nullable().default(null),
});
export type CallbackExecution = z.infer<typeof CallbackExecution>;

/**
 * A new execution with pyfly's defaults, built directly: it is made once per delivery on the hot
 * path, where a schema parse of data we construct ourselves buys nothing (the schema above still
 * validates executions that come from outside).
 */
export function newExecution(
  fields: Pick<CallbackExecution, "config_id" | "tenant_id" | "event_type" | "target_url" | "payload" | "delivery_id" | "source"> &
    Partial<CallbackExecution>,
): CallbackExecution {
  return {
    id: randomUUID(),
    status: "PENDING",
    attempts: 0,
    last_error: null,
    response_status: null,
    created_at: new Date().toISOString(),
    delivered_at: null,
    duration_ms: null,
    ...fields,
  };
}
