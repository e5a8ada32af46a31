/**
 * Tenant binding. Kafka ACLs decide who may write a topic, but not which tenant a writer may name in
 * the tenant header: any producer on an event topic could otherwise have webhooks signed with any
 * tenant's secret. A config that lists `topics` accepts its tenant's records from those topics only.
 * Empty (the default) keeps today's behaviour: every consumed topic may name the tenant. Pure.
 */
import type { CallbackConfig } from "./models.js";

/** True when `config` accepts records that arrived on `topic` (exact, case-sensitive, as Kafka names topics). */
export function tenantAllowedOnTopic(config: Pick<CallbackConfig, "topics">, topic: string): boolean {
  const topics = config.topics ?? [];
  return topics.length === 0 || topics.includes(topic);
}
