import { targetHostOf } from "../domain/target-host.js";
import type { DeliveryHandoff } from "../kafka/handoff-records.js";

export interface ReplayFilter {
  tenant?: string;
  eventType?: string;
  /** host or host:port of the target URL */
  targetHost?: string;
  /** dead-lettered at or after (epoch ms) */
  since?: number;
  /** dead-lettered before (epoch ms) */
  until?: number;
}

/** Which dead letters a replay takes; pure, so the CLI's filters are easy to test. */
export function matchesReplayFilter(handoff: DeliveryHandoff, deadLetteredAt: number, filter: ReplayFilter): boolean {
  if (filter.tenant !== undefined && handoff.tenantId !== filter.tenant) return false;
  if (filter.eventType !== undefined && handoff.eventType !== filter.eventType) return false;
  if (filter.targetHost !== undefined) {
    // A dead letter is data from the topic: a target that is not a URL matches no host.
    // The redacted target keeps scheme and host[:port], which is all this filter reads.
    if (!URL.canParse(handoff.target)) return false;
    const url = new URL(handoff.target);
    const wanted = filter.targetHost.toLowerCase();
    if (wanted !== url.hostname.toLowerCase() && wanted !== targetHostOf(url)) return false;
  }
  if (filter.since !== undefined && deadLetteredAt < filter.since) return false;
  if (filter.until !== undefined && deadLetteredAt >= filter.until) return false;
  return true;
}
