import kafkajs, { type Admin, type Kafka } from "kafkajs";
import type { Logger } from "pino";
import { SidecarError } from "../shared/errors.js";
import { tierLabel, type RetryTiers } from "../domain/retry-tiers.js";

/** Records of a delay tier kept in memory per partition: its heads only (see retry-tiers.ts). */
export const TIER_BUFFERED_PER_PARTITION = 64;

const WEEK_MS = 7 * 24 * 3_600_000;

/**
 * Creates the retry, tier and dead-letter topics that are missing (lacking the right is a warning:
 * someone else may create them), then checks that every tier keeps its records longer than its
 * delay. A tier whose retention is shorter would delete retries before they are due, silently: that
 * refuses the start (TIER_RETENTION_TOO_SHORT), naming the topic and both durations.
 */
export async function ensureTopics(kafka: Kafka, topics: string[], tiers: RetryTiers, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      try {
        await admin.createTopics({
          topics: missing.map((topic) => {
            const delay = tiers.delayOf(topic);
            // A tier we create keeps its records well past its delay, whatever the broker's default.
            return delay === undefined
              ? { topic }
              : { topic, configEntries: [{ name: "retention.ms", value: String(Math.max(WEEK_MS, 2 * delay)) }] };
          }),
          waitForLeaders: true,
        });
        logger.info({ topics: missing }, "created topics");
      } catch (error) {
        logger.warn({ topics: missing, err: (error as Error).message }, "could not create topics; create them or allow auto-creation");
      }
    }
    await checkTierRetention(admin, tiers, logger);
  } finally {
    await admin.disconnect();
  }
}

async function checkTierRetention(admin: Admin, tiers: RetryTiers, logger: Logger): Promise<void> {
  if (tiers.tiers.length === 0) return;
  let described;
  try {
    described = await admin.describeConfigs({
      resources: tiers.tiers.map((t) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name: t.topic, configNames: ["retention.ms"] })),
      includeSynonyms: false,
    });
  } catch (error) {
    logger.warn(
      { err: (error as Error).message },
      "could not read the delay tiers' retention; check that each keeps records longer than its delay",
    );
    return;
  }
  for (const resource of described.resources) {
    const delay = tiers.delayOf(resource.resourceName);
    const value = resource.configEntries.find((e) => e.configName === "retention.ms")?.configValue;
    if (delay === undefined || value === undefined || value === null) continue;
    const retention = Number(value);
    // -1: kept for ever.
    if (retention >= 0 && retention < delay) {
      throw new SidecarError(
        "TIER_RETENTION_TOO_SHORT",
        `retry tier topic ${resource.resourceName} keeps records for ${tierLabel(retention)} (retention.ms=${retention}), ` +
          `shorter than its delay of ${tierLabel(delay)}: retries would be deleted before they are due. ` +
          `Raise its retention.ms or remove the tier from pyfly.callbacks.retry.tiers`,
      );
    }
  }
}
