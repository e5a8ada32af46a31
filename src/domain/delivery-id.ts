import { createHash, randomUUID } from "node:crypto";
import type { CallbackSubscription, EventSource } from "./models.js";

/** The producer's own id of an event (a CloudEvents id, or the event-id header), with its tenant. */
export interface ProducerEventId {
  tenantId: string;
  eventId: string;
}

/**
 * The id a receiver deduplicates on. When the producer named the event (`producer`), it is derived
 * from that id, the tenant and the subscription, so an event published again (a producer retrying
 * after a crash) keeps its delivery id wherever it lands. Otherwise, for a Kafka record, it is
 * derived from the record's coordinates and the subscription, so a redelivered record (after a
 * crash or a rebalance) produces the same id; without either (a one-off `send`) every dispatch is
 * a new delivery.
 */
export function deliveryIdFor(
  source: EventSource | null,
  configId: string,
  subscription: CallbackSubscription,
  occurrence: number,
  producer: ProducerEventId | null = null,
): string {
  const named = producer === null ? null : ["event-id/v1", producer.tenantId, producer.eventId];
  const where = named ?? (source === null ? null : [source.topic, source.partition, source.offset]);
  if (where === null) return randomUUID();
  const digest = createHash("sha256")
    .update([...where, configId, subscription.event_type, subscription.target_url, occurrence].join("\u0000"))
    .digest("hex");
  // UUID layout with version 8 (custom) bits, so it fits where a UUID is expected.
  const variant = ((parseInt(digest.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-8${digest.slice(13, 16)}-${variant}${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
}
