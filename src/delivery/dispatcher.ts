import type { CallbackExecution } from "../domain/models.js";
import { newExecution } from "../domain/models.js";
import { planDeliveries, type PlannedDelivery } from "../domain/routing.js";
import type { ConfigRepository } from "../repository/config-repository.js";
import type { ExecutionStore } from "../repository/execution-store.js";
import { isDomainAuthorized } from "./ssrf/domain-allowlist.js";
import { prepareEvent, withLazyPayload, type PreparedEvent } from "./prepared-event.js";
import { attemptsAllowed, MAX_BACKOFF_MS, nextDelayMs, verdictOf } from "./retry-policy.js";
import type { AttemptOutcome } from "../domain/outcomes.js";
import { RequestSigner } from "./request-builder.js";
import type { Sender } from "./sender.js";
import { targetOf } from "./target.js";
import type { EventSource } from "../domain/models.js";
import type { FailureReason } from "../domain/outcomes.js";
import { abortableSleep } from "../shared/abortable-sleep.js";

/** What metrics and logs learn from the dispatcher; they read outcomes, they never steer. */
export interface DeliveryObserver {
  attempt(targetHost: string, outcome: AttemptOutcome, durationMs: number): void;
  final(execution: CallbackExecution, event: PreparedEvent): void;
}

export interface DispatcherOptions {
  configs: ConfigRepository;
  executions: ExecutionStore;
  sender: Sender;
  observer?: DeliveryObserver;
  jitter?: number;
  /** Executions keep their event's payload (parsed on first read); off, they keep null. */
  keepPayloads?: boolean;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/**
 * How one attempt ended, for the caller that decides what happens next: `delivered`, `failed`
 * (final: why, so callers never compare error strings), or `retry`, no earlier than `notBefore`
 * (the schedule or backoff, and the receiver's Retry-After). The dispatcher never waits itself.
 */
export type AttemptVerdict =
  | { kind: "delivered"; execution: CallbackExecution }
  | { kind: "failed"; execution: CallbackExecution; failure: FailureReason }
  | { kind: "retry"; execution: CallbackExecution; notBefore: number };

/**
 * One attempt's trace, started only when an attempt is really made (or refused by the domain
 * list) and always settled: `headers` go on the request (trace context for the receiver).
 */
export interface AttemptHooks {
  readonly headers: Record<string, string> | undefined;
  settled(outcome: AttemptOutcome): void;
}

// pyfly's exact last_error for a refused domain; receivers of our executions may match on it.
const DOMAIN_NOT_AUTHORIZED = "Domain not authorized";

/**
 * pyfly's CallbackDispatcher: for each enabled config of the tenant and each matching
 * subscription, one execution, PENDING first, then final. Deliveries of one event run concurrently.
 */
export class Dispatcher {
  private readonly signer = new RequestSigner();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(private readonly options: DispatcherOptions) {
    this.sleep = options.sleep ?? abortableSleep;
    this.now = options.now ?? Date.now;
  }

  /** The library entry point, as in pyfly: retries in process until every delivery is final. */
  async dispatch(tenantId: string, eventType: string, payload: unknown, source: EventSource | null = null): Promise<CallbackExecution[]> {
    return this.dispatchJson(tenantId, eventType, JSON.stringify(payload), source);
  }

  /** Same, from JSON text, so numbers keep their exact spelling. */
  async dispatchJson(
    tenantId: string,
    eventType: string,
    json: string | Uint8Array,
    source: EventSource | null = null,
  ): Promise<CallbackExecution[]> {
    const event = prepareEvent(tenantId, eventType, json, source);
    return Promise.all(this.plan(event).map((planned) => this.deliver(event, planned)));
  }

  plan(event: PreparedEvent): PlannedDelivery[] {
    const producer = event.eventId === null ? null : { tenantId: event.tenantId, eventId: event.eventId };
    return planDeliveries(this.options.configs.findByTenant(event.tenantId), event.eventType, event.source, producer);
  }

  /**
   * One attempt of one delivery, `execution.attempts` having been made (0 for a new one, more for
   * one taken from the retry topic). Updates and saves the execution.
   */
  async attempt(
    event: PreparedEvent,
    planned: PlannedDelivery,
    execution: CallbackExecution = this.newExecution(event, planned),
    trace?: (attemptsMade: number) => AttemptHooks,
  ): Promise<AttemptVerdict> {
    const { config, subscription } = planned;
    const { url, host: targetHost } = targetOf(subscription.target_url);
    if (!isDomainAuthorized(subscription.target_url, config.authorized_domains)) {
      const refused: AttemptOutcome = { kind: "rejected", reason: "domain_not_authorized", message: DOMAIN_NOT_AUTHORIZED };
      this.options.observer?.attempt(targetHost, refused, 0);
      trace?.(execution.attempts).settled(refused);
      return this.fail(event, execution, "domain_not_authorized", DOMAIN_NOT_AUTHORIZED);
    }
    const allowed = attemptsAllowed(config);
    // max_attempts 0, or a retried delivery that arrives with its attempts already spent.
    if (execution.attempts >= allowed) return this.fail(event, execution, "attempts_exhausted", execution.last_error);
    const attempt = execution.attempts + 1;
    const { headers, body } = this.signer.requestFor(event, planned, Math.floor(this.now() / 1000));
    const hooks = trace?.(execution.attempts);
    // Trace context is not signed: it describes our processing, not the event.
    const sent = hooks?.headers === undefined ? headers : { ...headers, ...hooks.headers };
    const { outcome, durationMs } = await this.options.sender.send({ url, headers: sent, body, tls: config.tls });
    hooks?.settled(outcome);
    execution.attempts = attempt;
    execution.duration_ms = Math.round(durationMs * 1000) / 1000;
    execution.response_status = outcome.kind === "response" ? outcome.status : null;
    this.options.observer?.attempt(targetHost, outcome, durationMs);

    const verdict = verdictOf(outcome);
    if (verdict === "delivered") {
      execution.last_error = null;
      execution.delivered_at = new Date(this.now()).toISOString();
      execution.status = "DELIVERED";
      this.options.executions.save(execution);
      this.options.observer?.final(execution, event);
      return { kind: "delivered", execution };
    }
    execution.last_error = describe(outcome);
    if (verdict === "final")
      return this.fail(event, execution, outcome.kind === "rejected" ? outcome.reason : "final_status", execution.last_error);
    if (attempt >= allowed) return this.fail(event, execution, "attempts_exhausted", execution.last_error);
    this.options.executions.save(execution);
    const delay = nextDelayMs(config, attempt, {
      jitter: this.options.jitter ?? 0,
      retryAfterMs: outcome.kind === "response" ? outcome.retryAfterMs : undefined,
    });
    return { kind: "retry", execution, notBefore: this.now() + delay };
  }

  /**
   * pyfly's retry loop for callers outside the record pipeline (`send`, `replay`, the library
   * entry): attempts with their waits slept in place until the delivery is final. A person waits
   * for these, so a schedule's entry beyond pyfly's 5-minute cap is slept as 5 minutes.
   */
  async deliver(
    event: PreparedEvent,
    planned: PlannedDelivery,
    execution = this.newExecution(event, planned),
    trace?: (attemptsMade: number) => AttemptHooks,
  ): Promise<CallbackExecution> {
    this.options.executions.save(execution);
    for (;;) {
      const verdict = await this.attempt(event, planned, execution, trace);
      if (verdict.kind !== "retry") return verdict.execution;
      await this.sleep(Math.min(MAX_BACKOFF_MS, Math.max(0, verdict.notBefore - this.now())));
    }
  }

  newExecution(event: PreparedEvent, planned: PlannedDelivery): CallbackExecution {
    const execution = newExecution({
      config_id: planned.config.id,
      tenant_id: event.tenantId,
      event_type: event.eventType,
      target_url: planned.subscription.target_url,
      payload: null,
      delivery_id: planned.deliveryId,
      source: event.source,
      created_at: new Date(this.now()).toISOString(),
    });
    return this.attachPayload(execution, event);
  }

  /** Gives an execution its event's payload, when executions keep payloads at all. */
  attachPayload(execution: CallbackExecution, event: PreparedEvent): CallbackExecution {
    return this.options.keepPayloads === false ? execution : withLazyPayload(execution, event);
  }

  /** Ends a delivery FAILED outside the retry loop's normal course too (a subscription removed since). */
  fail(
    event: PreparedEvent,
    execution: CallbackExecution,
    failure: FailureReason,
    lastError: string | null,
  ): AttemptVerdict & { kind: "failed" } {
    execution.status = "FAILED";
    execution.last_error = lastError;
    this.options.executions.save(execution);
    this.options.observer?.final(execution, event);
    return { kind: "failed", execution, failure };
  }
}

function describe(outcome: AttemptOutcome): string {
  return outcome.kind === "response" ? `HTTP ${outcome.status}` : outcome.message;
}
