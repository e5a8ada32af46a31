import { createHash, randomUUID } from "node:crypto";
import type { CallbackSubscription, EventSource } from "./models.js";

/**
 * The id a receiver deduplicates on. For a Kafka record it is derived from the record's coordinates
 * and the subscription, so a redelivered record (after a crash or a rebalance) produces the same id;
 * without a source (a one-off `send`) every dispatch is a new delivery.
 */
export function deliveryIdFor(
  source: EventSource | null,
  configId: string,
  subscription: CallbackSubscription,
  occurrence: number,
): string {
  if (source === null) return randomUUID();
  const digest = createHash("sha256")
    .update(
      [source.topic, source.partition, source.offset, configId, subscription.event_type, subscription.target_url, occurrence].join(
        "\u0000",
      ),
    )
    .digest("hex");
  // UUID layout with version 8 (custom) bits, so it fits where a UUID is expected.
  const variant = ((parseInt(digest.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-8${digest.slice(13, 16)}-${variant}${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
}
