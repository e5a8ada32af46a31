import type { Logger } from "pino";
import type { CallbackExecution } from "../domain/models.js";
import type { PlannedDelivery } from "../domain/routing.js";
import { DOMAIN_NOT_AUTHORIZED, type Dispatcher } from "../delivery/dispatcher.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import { backoffDelayMs, isRetryableStatus } from "../delivery/retry-policy.js";
import { targetHostOf } from "../delivery/target.js";
import type { Metrics } from "../observability/metrics.js";
import type { ExecutionStore } from "../repository/execution-store.js";
import type { HostSlots } from "./concurrency.js";
import type { RecordContext } from "./consumer-runner.js";
import { deliveryDeadLetter, MAX_HANDOFF_VALUE_BYTES, retryRecord, type DeliveryHandoff } from "./handoff-records.js";
import type { RecordHeaders } from "./record-decoder.js";
import type { DurablePublisher } from "./publisher.js";

export interface DeliveryRunnerDeps {
  dispatcher: Dispatcher;
  executions: ExecutionStore;
  publisher: DurablePublisher;
  hostSlots: HostSlots;
  retryTopic: string;
  deadLetterTopic: string;
  inProcessBudgetMs: number;
  jitter: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
}

/** The record a delivery came from, carried into retry and dead-letter records. */
export interface Origin {
  headers: RecordHeaders;
  key: Buffer | string | null;
}

/**
 * One delivery inside a record's lifetime, for the event and the retry consumers alike: attempt
 * it within the short in-process budget, then make the outcome durable. A retry due later goes to
 * the retry topic and a FAILED delivery to the dead-letter topic; either way the write is
 * acknowledged before this resolves, so the record's offset may advance.
 */
export async function runDelivery(
  deps: DeliveryRunnerDeps,
  event: PreparedEvent,
  planned: PlannedDelivery,
  context: RecordContext,
  origin: Origin,
  execution?: CallbackExecution,
): Promise<void> {
  const now = deps.now ?? Date.now;
  const host = targetHostOf(new URL(planned.subscription.target_url));
  const current = execution ?? deps.dispatcher.newExecution(event, planned);
  // A body too large for a Kafka record cannot wait in the retry topic: it waits and retries in
  // process instead, and is left uncommitted (redelivered) if the sidecar stops meanwhile.
  const durable = Buffer.byteLength(event.body) <= MAX_HANDOFF_VALUE_BYTES;
  const budgetMs = durable ? deps.inProcessBudgetMs : Number.POSITIVE_INFINITY;

  // The host has its whole share in flight and finished nothing for the in-process budget (slow or
  // dead): don't queue behind it in this record's lifetime; try again later from the retry topic,
  // without spending an attempt. A busy but healthy host keeps finishing work, so we wait for it.
  if (!(await deps.hostSlots.acquire(host, budgetMs, context.stopping))) {
    if (!durable) throw new Error("stopped while waiting for the host; record left for redelivery");
    deps.executions.save(current);
    const delay = backoffDelayMs(planned.config.backoff_ms, Math.max(1, current.attempts), { jitter: deps.jitter });
    await scheduleRetry(deps, event, planned, current, origin, now() + delay, context);
    return;
  }
  let result;
  deps.metrics?.inflight.inc();
  try {
    result = await deps.dispatcher.deliver(event, planned, { sleepBudgetMs: budgetMs, signal: context.stopping }, current);
  } finally {
    deps.metrics?.inflight.dec();
    deps.hostSlots.release(host);
  }
  if (result.state === "deferred") {
    if (!durable) throw new Error("stopped while retrying in process; record left for redelivery");
    await scheduleRetry(deps, event, planned, result.execution, origin, result.dueAt, context);
  } else if (result.execution.status === "FAILED") {
    const reason = deadLetterReason(result.execution, planned);
    const record = deliveryDeadLetter(handoffOf(event, identityOf(planned), result.execution), event.body, reason, origin.headers, origin.key, now());
    await deps.publisher.publish(deps.deadLetterTopic, record, context.deadline);
    deps.metrics?.deadLetters.inc({ tenant: event.tenantId, reason });
    deps.logger.warn(
      { tenant: event.tenantId, target_host: host, delivery_id: planned.deliveryId, attempts: result.execution.attempts, reason, last_error: result.execution.last_error },
      "delivery failed; written to the dead-letter topic",
    );
  }
}

async function scheduleRetry(
  deps: DeliveryRunnerDeps,
  event: PreparedEvent,
  planned: PlannedDelivery,
  execution: CallbackExecution,
  origin: Origin,
  dueAt: number,
  context: RecordContext,
): Promise<void> {
  const record = retryRecord(handoffOf(event, identityOf(planned), execution), event.body, dueAt, origin.headers, origin.key);
  await deps.publisher.publish(deps.retryTopic, record, context.deadline);
  deps.metrics?.retriesScheduled.inc({ target_host: targetHostOf(new URL(planned.subscription.target_url)) });
}

/** The delivery's identity: a config id, the subscription's event type and target, a delivery id. */
export type DeliveryIdentity = { configId: string; subscription: { event_type: string; target_url: string }; deliveryId: string };

export const identityOf = (planned: PlannedDelivery): DeliveryIdentity => ({ configId: planned.config.id, subscription: planned.subscription, deliveryId: planned.deliveryId });

export function handoffOf(event: PreparedEvent, identity: DeliveryIdentity, execution: CallbackExecution): DeliveryHandoff {
  return {
    deliveryId: identity.deliveryId,
    executionId: execution.id,
    configId: identity.configId,
    tenantId: event.tenantId,
    eventType: event.eventType,
    subscriptionEventType: identity.subscription.event_type,
    targetUrl: identity.subscription.target_url,
    attempts: execution.attempts,
    createdAt: execution.created_at,
    occurredAt: event.occurredAt,
    lastError: execution.last_error,
    responseStatus: execution.response_status,
    source: event.source,
  };
}

/** Why a delivery ended FAILED, in a fixed vocabulary (a metric label). */
export function deadLetterReason(execution: CallbackExecution, planned: PlannedDelivery): string {
  if (execution.last_error === DOMAIN_NOT_AUTHORIZED) return "domain_not_authorized";
  if (execution.response_status !== null && !isRetryableStatus(execution.response_status)) return "final_status";
  if (execution.attempts >= planned.config.max_attempts) return "attempts_exhausted";
  return "rejected";
}
