/**
 * `replay`: delivers dead letters again, keeping their delivery ids (receivers deduplicate on
 * them), with each config's full retry schedule in process. It reads the dead-letter topic up to
 * where it ended at the start and changes nothing in it; a delivery that fails again stays there.
 *
 * Reading and delivering never overlap inside the consumer: the topic is read in chunks by a
 * consumer that is gone before the chunk's deliveries start (see readTopicInChunks), so a delivery
 * that runs its whole schedule cannot make a session time out, and nothing is read twice.
 */
import { createDeliveryEngine } from "../app/delivery-engine.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import type { PlannedDelivery } from "../domain/routing.js";
import { createKafka } from "../kafka/client.js";
import { subscriptionFingerprint } from "../domain/subscription-ref.js";
import { handoffKeys } from "../kafka/handoff-mac.js";
import { eventOfHandoff, H, headerText, isSealed, readDeliveryHandoff, type DeliveryHandoff } from "../kafka/handoff-records.js";
import { matchesReplayFilter, type ReplayFilter } from "./replay-filter.js";
import { readTopicInChunks, type ChunkLimits, type ReadRecord } from "../kafka/topic-reader.js";
import { startTracing } from "../observability/tracing.js";
import { attemptHooks } from "../pipeline/record-trace.js";
import { VERSION } from "../version.js";
import { createLogger } from "../observability/logger.js";
import { CONFIG_OPTION, EXIT, loadConfig, parseCommandArgs, UsageError, writeOut } from "./common.js";

export const REPLAY_USAGE = `Usage: callback-sidecar replay [--tenant T] [--event-type E] [--target-host H]
                              [--since TIME] [--until TIME] [--dry-run] [--config PATH]

Re-delivers dead-lettered webhooks (delivery ids kept), one JSON line per dead letter, then a summary.
  --tenant, --event-type   exact match
  --target-host            host or host:port of the target URL
  --since, --until         when it was dead-lettered: ISO 8601 time or epoch milliseconds
  --dry-run                list what would be replayed; send nothing
Dead letters that cannot be replayed (value cut to fit the topic, unreadable headers, a value that
is not JSON) are skipped and counted ("truncated", "not_replayable"); they leave the exit status alone.
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

export interface ReplaySummary {
  /** Dead letters read (every record up to the end, matching or not). */
  read: number;
  /** Read and selected by the filters (truncated ones included). */
  matched: number;
  delivered: number;
  failed: number;
  /** Matched, but the value was cut to fit the topic: the original body is gone. */
  truncated: number;
  /** Not a delivery that can be redone: unreadable handoff headers (undispatchable records), or a value that is not JSON. */
  not_replayable: number;
  /** Matched, but the MAC is missing or wrong: not written by this deployment (or its keys changed); never sent. */
  forged: number;
}

interface ReplayItem {
  line: Record<string, unknown>;
  event: PreparedEvent;
  planned: PlannedDelivery;
  /** The dead letter itself, whose trace context the replay continues. */
  record: ReadRecord;
}

/** Runs tasks at most `concurrency` at a time; a task must not reject. */
class BoundedRunner {
  private readonly queue: (() => Promise<void>)[] = [];
  private running = 0;
  private readonly waiters: { when: () => boolean; resolve: () => void }[] = [];

  constructor(private readonly concurrency: number) {}

  add(task: () => Promise<void>): void {
    this.queue.push(task);
    this.pump();
  }

  /** Every queued task has started (at most `concurrency` still run). */
  allStarted(): Promise<void> {
    return this.until(() => this.queue.length === 0);
  }

  /** Every task has finished. */
  idle(): Promise<void> {
    return this.until(() => this.queue.length === 0 && this.running === 0);
  }

  private until(when: () => boolean): Promise<void> {
    if (when()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ when, resolve }));
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const task = this.queue.shift() as () => Promise<void>;
      this.running += 1;
      void task().finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
    for (const w of this.waiters.filter((x) => x.when())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export interface ReplayOptions {
  /** Chunk bounds for reading the dead-letter topic (tests make them small). */
  chunkLimits?: Partial<ChunkLimits>;
}

export async function replayCommand(argv: string[], options: ReplayOptions = {}): Promise<number> {
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
  const dryRun = values["dry-run"] === true;

  const { settings } = loadConfig(values.config);
  const logger = createLogger(settings.logLevel, process.stderr);
  const engine = createDeliveryEngine(settings, logger);
  const tracing = await startTracing(settings.tracing.enabled, {
    serviceVersion: VERSION,
    consumerGroup: `${settings.kafka.groupId}.replay`,
    protocol: settings.tracing.protocol,
    logger,
    setLogContext: () => undefined,
  });
  const kafka = createKafka(settings.kafka, logger);
  const summary: ReplaySummary = { read: 0, matched: 0, delivered: 0, failed: 0, truncated: 0, not_replayable: 0, forged: 0 };

  /*
   * Runs inside the consumer's handler, so it decides everything about a record at once and never
   * waits: lines for what is not delivered are written here, and only deliveries to make are kept.
   */
  const select = ({ topic, partition, message }: ReadRecord): ReplayItem | undefined => {
    summary.read += 1;
    const at = { partition, offset: message.offset };
    const reason = headerText(message.headers, H.reason) ?? "unknown";
    let handoff: DeliveryHandoff;
    try {
      handoff = readDeliveryHandoff(message.headers);
    } catch (error) {
      // Undispatchable records (bad headers, not JSON, unknown tenant) have no delivery to redo,
      // and no tenant or target a filter could select them by: each run reports them.
      summary.not_replayable += 1;
      writeOut(JSON.stringify({ ...at, replayable: false, skipped: "not_a_delivery", reason, detail: messageOf(error) }));
      return undefined;
    }
    const stamped = Number(headerText(message.headers, H.deadLetteredAt));
    const deadLetteredAt = Number.isFinite(stamped) ? stamped : Number(message.timestamp);
    if (!matchesReplayFilter(handoff, deadLetteredAt, filter)) return undefined;
    summary.matched += 1;
    // The target as the record carries it: redacted (a capability URL is a credential).
    const base = {
      ...at,
      delivery_id: handoff.deliveryId,
      tenant: handoff.tenantId,
      event_type: handoff.eventType,
      target: handoff.target,
    };
    const originalBytes = headerText(message.headers, H.valueTruncated);
    if (originalBytes !== undefined) {
      // Sending the cut value would deliver a different body under the same delivery id.
      summary.truncated += 1;
      writeOut(JSON.stringify({ ...base, replayable: false, skipped: "value_truncated", original_bytes: Number(originalBytes), reason }));
      return undefined;
    }
    const config = engine.configs.findById(handoff.configId);
    // Replay signs and sends what the record holds: only what this sidecar wrote (same keys) is trusted.
    if (!isSealed(message.headers, message.value ?? Buffer.alloc(0), "dead-letter", handoffKeys(settings.handoff.keys, config))) {
      summary.forged += 1;
      writeOut(JSON.stringify({ ...base, replayable: false, skipped: "mac_invalid", reason }));
      return undefined;
    }
    let event: PreparedEvent;
    try {
      event = eventOfHandoff(handoff, message.value);
    } catch (error) {
      summary.not_replayable += 1;
      writeOut(JSON.stringify({ ...base, replayable: false, skipped: "value_not_json", reason, detail: messageOf(error) }));
      return undefined;
    }
    if (dryRun) {
      writeOut(JSON.stringify({ ...base, reason, last_error: handoff.lastError, dry_run: true }));
      return undefined;
    }
    const subscription = config?.subscriptions.find(
      (s) => s.event_type === handoff.subscriptionEventType && subscriptionFingerprint(s) === handoff.subscriptionFingerprint,
    );
    if (!config || !config.enabled || !subscription) {
      summary.failed += 1;
      writeOut(JSON.stringify({ ...base, status: "FAILED", last_error: "Subscription no longer configured" }));
      return undefined;
    }
    return { line: base, event, planned: { config, subscription, deliveryId: handoff.deliveryId }, record: { topic, partition, message } };
  };

  const replay = async ({ line, event, planned, record }: ReplayItem): Promise<void> => {
    // The dead letter carries the trace of the processing that gave up: the replay continues it.
    const { message } = record;
    const trace = tracing?.record(
      { topic: record.topic, partition: record.partition, offset: message.offset, key: message.key ?? null },
      (name) => headerText(message.headers, name),
      Date.now(),
    );
    try {
      // A new execution: the replay gets the config's whole schedule, max-attempts attempts.
      const execution = await engine.dispatcher.deliver(event, planned, undefined, trace && attemptHooks(trace, planned));
      summary[execution.status === "DELIVERED" ? "delivered" : "failed"] += 1;
      writeOut(JSON.stringify({ ...line, status: execution.status, attempts: execution.attempts, last_error: execution.last_error }));
    } catch (error) {
      summary.failed += 1;
      writeOut(JSON.stringify({ ...line, status: "FAILED", last_error: messageOf(error) }));
    } finally {
      trace?.end();
    }
  };

  // Bounded: a large dead-letter topic must not become thousands of requests at once.
  const runner = new BoundedRunner(REPLAY_CONCURRENCY);
  try {
    const chunks = readTopicInChunks(kafka, settings.deadLetter.topic, {
      groupPrefix: `${settings.kafka.groupId}.replay`,
      select,
      ...(options.chunkLimits ? { limits: options.chunkLimits } : {}),
    });
    for await (const chunk of chunks) {
      for (const item of chunk) runner.add(() => replay(item));
      // The next chunk is read while the last deliveries of this one run; memory stays at about
      // one chunk plus what is in flight.
      await runner.allStarted();
    }
  } finally {
    // Deliveries already started report their outcome even when reading failed.
    await runner.idle();
    await engine.close();
    await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: messageOf(error) }, "could not export the last spans"));
  }
  writeOut(JSON.stringify({ summary }));
  return summary.failed === 0 ? EXIT.OK : EXIT.NEGATIVE;
}
