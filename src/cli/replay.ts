/**
 * `replay`: delivers dead letters again, keeping their delivery ids (receivers deduplicate on
 * them), with each config's full retry schedule in process. It reads the dead-letter topic up to
 * where it ended at the start and changes nothing in it; a delivery that fails again stays there.
 */
import { createDeliveryEngine } from "../delivery/engine.js";
import { prepareEvent } from "../delivery/prepared-event.js";
import { createKafka } from "../kafka/client.js";
import { Semaphore } from "../kafka/concurrency.js";
import { H, HandoffFormatError, headerText, readDeliveryHandoff } from "../kafka/handoff-records.js";
import { matchesReplayFilter, type ReplayFilter } from "../kafka/replay-filter.js";
import { readTopicToEnd } from "../kafka/topic-reader.js";
import { createLogger } from "../observability/logger.js";
import { CONFIG_OPTION, EXIT, loadConfig, parseCommandArgs, UsageError, writeOut } from "./common.js";

export const REPLAY_USAGE = `Usage: callback-sidecar replay [--tenant T] [--event-type E] [--target-host H]
                              [--since TIME] [--until TIME] [--dry-run] [--config PATH]

Re-delivers dead-lettered webhooks (delivery ids kept), one JSON line per dead letter, then a summary.
  --tenant, --event-type   exact match
  --target-host            host or host:port of the target URL
  --since, --until         when it was dead-lettered: ISO 8601 time or epoch milliseconds
  --dry-run                list what would be replayed; send nothing
Exit 0 when every replayed delivery was delivered, 1 otherwise.`;

const REPLAY_CONCURRENCY = 16;

const OPTIONS = {
  ...CONFIG_OPTION,
  tenant: { type: "string" },
  "event-type": { type: "string" },
  "target-host": { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parseTime(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`--${option}: expected an ISO 8601 time or epoch milliseconds`);
  return ms;
}

export async function replayCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, OPTIONS);
  if (values.help) {
    writeOut(REPLAY_USAGE);
    return EXIT.OK;
  }
  const filter: ReplayFilter = {
    ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    ...(values["event-type"] !== undefined ? { eventType: values["event-type"] } : {}),
    ...(values["target-host"] !== undefined ? { targetHost: values["target-host"] } : {}),
  };
  const since = parseTime("since", values.since);
  const until = parseTime("until", values.until);
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;

  const { settings } = loadConfig(values.config);
  const logger = createLogger(settings.logLevel, process.stderr);
  const engine = createDeliveryEngine(settings, logger);
  const kafka = createKafka(settings.kafka, logger);
  const summary = { read: 0, matched: 0, delivered: 0, failed: 0, not_replayable: 0 };
  const replays: Promise<void>[] = [];
  const slots = new Semaphore(REPLAY_CONCURRENCY);
  try {
    summary.read = await readTopicToEnd(
      kafka,
      settings.deadLetter.topic,
      async ({ partition, message }) => {
        const at = { partition, offset: message.offset };
        let handoff;
        try {
          handoff = readDeliveryHandoff(message.headers);
        } catch (error) {
          if (!(error instanceof HandoffFormatError)) throw error;
          // Undispatchable records (bad headers, not JSON, unknown tenant) have no delivery to redo.
          if (Object.keys(filter).length === 0) {
            summary.not_replayable += 1;
            writeOut(JSON.stringify({ ...at, replayable: false, reason: headerText(message.headers, H.reason) ?? "unknown" }));
          }
          return;
        }
        const deadLetteredAt = Number(headerText(message.headers, H.deadLetteredAt) ?? message.timestamp);
        if (!matchesReplayFilter(handoff, deadLetteredAt, filter)) return;
        summary.matched += 1;
        const base = { ...at, delivery_id: handoff.deliveryId, tenant: handoff.tenantId, event_type: handoff.eventType, target_url: handoff.targetUrl };
        if (values["dry-run"]) {
          writeOut(JSON.stringify({ ...base, reason: headerText(message.headers, H.reason), last_error: handoff.lastError, dry_run: true }));
          return;
        }
        const config = engine.configs.findById(handoff.configId);
        const subscription = config?.subscriptions.find((s) => s.target_url === handoff.targetUrl && s.event_type === handoff.subscriptionEventType);
        if (!config || !config.enabled || !subscription) {
          summary.failed += 1;
          writeOut(JSON.stringify({ ...base, status: "FAILED", last_error: "Subscription no longer configured" }));
          return;
        }
        // Bounded: a large dead-letter topic must not become thousands of requests at once.
        await slots.acquire();
        const event = prepareEvent(handoff.tenantId, handoff.eventType, message.value ?? Buffer.alloc(0), handoff.source, handoff.occurredAt);
        replays.push(
          engine.dispatcher
            .deliver(event, { config, subscription, deliveryId: handoff.deliveryId })
            .then(({ execution }) => {
              summary[execution.status === "DELIVERED" ? "delivered" : "failed"] += 1;
              writeOut(JSON.stringify({ ...base, status: execution.status, attempts: execution.attempts, last_error: execution.last_error }));
            })
            .finally(() => slots.release()),
        );
      },
      `${settings.kafka.groupId}.replay`,
    );
    await Promise.all(replays);
  } finally {
    await engine.close();
  }
  writeOut(JSON.stringify({ summary }));
  return summary.failed === 0 ? EXIT.OK : EXIT.NEGATIVE;
}
