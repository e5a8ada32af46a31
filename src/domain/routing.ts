import type { CallbackConfig, CallbackSubscription, EventSource } from "./models.js";
import { deliveryIdFor, type ProducerEventId } from "./delivery-id.js";
import { compileFilter, type FilterInput, type PayloadFilter } from "./payload-filter.js";

/** One webhook to send for one event: which config and subscription, under which stable id. */
export interface PlannedDelivery {
  config: CallbackConfig;
  subscription: CallbackSubscription;
  deliveryId: string;
}

/** pyfly's matching rule exactly: the subscription's event type equals the event's, or is "*". */
export function matchesEventType(subscription: CallbackSubscription, eventType: string): boolean {
  return subscription.event_type === eventType || subscription.event_type === "*";
}

/** The tenant's enabled configs x their matching subscriptions, in configuration order. */
export function planDeliveries(
  configs: readonly CallbackConfig[],
  eventType: string,
  source: EventSource | null,
  producer: ProducerEventId | null = null,
): PlannedDelivery[] {
  const planned: PlannedDelivery[] = [];
  for (const config of configs) {
    if (!config.enabled) continue;
    const occurrences = new Map<string, number>();
    for (const subscription of config.subscriptions) {
      if (!matchesEventType(subscription, eventType)) continue;
      // Identical subscriptions in one config stay distinct deliveries, as in pyfly.
      const identity = `${subscription.event_type}\u0000${subscription.target_url}`;
      const occurrence = occurrences.get(identity) ?? 0;
      occurrences.set(identity, occurrence + 1);
      planned.push({ config, subscription, deliveryId: deliveryIdFor(source, config.id, subscription, occurrence, producer) });
    }
  }
  return planned;
}

// Compiled on first use per subscription object (configs are fixed for the process's life); the
// configuration loader has compiled each once already to report errors, so this cannot throw.
const compiled = new WeakMap<CallbackSubscription, PayloadFilter>();

/** Whether a subscription wants the event: it has no filter, or its filter matches. */
export function wantsEvent(subscription: CallbackSubscription, input: FilterInput): boolean {
  if (subscription.filter === null) return true;
  let filter = compiled.get(subscription);
  if (filter === undefined) {
    filter = compileFilter(subscription.filter);
    compiled.set(subscription, filter);
  }
  return filter.matches(input);
}
