// The record pipeline wired to fakes at its seams (publisher, sender, clock via fake timers, breakers):
// the event and retry schedulers are real, and retry-topic writes are fed back to the retry consumer.
import pino from "pino";
import type { z } from "zod";
import { Dispatcher } from "../../src/delivery/dispatcher.js";
import { HostSlots } from "../../src/delivery/host-slots.js";
import { RateLimiter } from "../../src/delivery/rate-limiter.js";
import type { AttemptResult, OutboundRequest, Sender } from "../../src/delivery/sender.js";
import { CallbackConfig } from "../../src/domain/models.js";
import { handoffKeys } from "../../src/kafka/handoff-mac.js";
import type { OutboundRecord } from "../../src/kafka/handoff-records.js";
import type { InboundRecord } from "../../src/kafka/record-processor.js";
import { laneOf, RecordScheduler } from "../../src/kafka/record-scheduler.js";
import { RetryTiers } from "../../src/domain/retry-tiers.js";
import { EventPipeline } from "../../src/pipeline/event-pipeline.js";
import type { PipelineDeps } from "../../src/pipeline/pipeline-deps.js";
import { RetryPipeline } from "../../src/pipeline/retry-pipeline.js";
import { ConfigRepository } from "../../src/repository/config-repository.js";
import { ExecutionStore } from "../../src/repository/execution-store.js";
import type { AttemptOutcome } from "../../src/domain/outcomes.js";
import { SidecarError } from "../../src/shared/errors.js";

export const TOPICS = { events: "events", retry: "g.retry", deadLetter: "g.dead-letter" };

/** What the fake endpoint does with one attempt; "throw" is a sender bug, "hang" waits for the timeout. */
export type Behaviour = AttemptOutcome | "throw";

export interface HarnessOptions {
  configs: z.input<typeof CallbackConfig>[];
  /** Decides each attempt; `n` counts this delivery id's attempts from 1. */
  endpoint: (request: OutboundRequest, n: number) => Behaviour;
  /** Publisher writes to this topic are refused for good (HANDOFF_REFUSED). */
  refuseTopic?: string;
  maxInFlight?: number;
  ordering?: "none" | "key" | "partition";
  reopensAt?: (host: string) => number | undefined;
  inProcessBudgetMs?: number;
  /** Delay tiers (ms); none by default, so every retry goes to the retry topic. */
  tiersMs?: number[];
  /** Host slots per target host. */
  perHost?: number;
  origin?: string;
}

export function pipelineHarness(options: HarnessOptions) {
  const logger = pino({ level: "silent" });
  const configs = new ConfigRepository(options.configs.map((c) => CallbackConfig.parse(c)));
  const executions = new ExecutionStore(100_000);
  const attempts = new Map<string, number>();
  const published: { topic: string; record: OutboundRecord }[] = [];
  const refused: { topic: string; record: OutboundRecord }[] = [];
  const delivered = new Map<string, number>();
  const sender: Sender = {
    async send(request): Promise<AttemptResult> {
      const id = request.headers["X-Pyfly-Delivery-Id"] as string;
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const behaviour = options.endpoint(request, n);
      if (behaviour === "throw") throw new Error("sender bug");
      if (behaviour.kind === "response" && behaviour.status >= 200 && behaviour.status < 300)
        delivered.set(id, (delivered.get(id) ?? 0) + 1);
      return { outcome: behaviour, durationMs: 1 };
    },
    close: async () => undefined,
  };
  const dispatcher = new Dispatcher({ configs, executions, sender });
  const offsets = new Map<string, number>();
  const nextOffset = (topic: string) => {
    const o = offsets.get(topic) ?? 0;
    offsets.set(topic, o + 1);
    return String(o);
  };
  const retryRecords: InboundRecord[] = [];
  const tiers = new RetryTiers(TOPICS.retry, options.tiersMs ?? []);
  const deps: PipelineDeps = {
    dispatcher,
    configs,
    executions,
    publisher: {
      async publish(topic, record) {
        if (topic === options.refuseTopic) {
          refused.push({ topic, record });
          throw new SidecarError("HANDOFF_REFUSED", `${topic}: refused`);
        }
        published.push({ topic, record });
        if (tiers.topics().includes(topic)) offer(retries, retryPipeline, toInbound(topic, nextOffset(topic), record));
      },
    },
    hostSlots: new HostSlots(options.perHost ?? 8),
    breakers: { reopensAt: options.reopensAt ?? (() => undefined) },
    topics: { retry: TOPICS.retry, deadLetter: TOPICS.deadLetter },
    tiers,
    rateLimiter: new RateLimiter(),
    handoffKeys: (configId) => handoffKeys([], configs.findById(configId)),
    origin: options.origin ?? "g",
    headerNames: { tenant: "x-tenant-id", eventType: "x-event-type", eventId: "x-event-id" },
    tenantAttribute: "tenantid",
    inProcessBudgetMs: options.inProcessBudgetMs ?? 1_000,
    jitter: 0,
    logger,
    now: Date.now,
  };
  const schedulerOptions = { maxInFlight: options.maxInFlight ?? 16, maxBufferedPerPartition: 1_000, logger, onPause: () => undefined };
  const events = new RecordScheduler(schedulerOptions);
  const retries = new RecordScheduler(schedulerOptions);
  const eventPipeline = new EventPipeline(deps);
  const retryPipeline = new RetryPipeline(deps);

  function offer(scheduler: RecordScheduler, processor: EventPipeline | RetryPipeline, record: InboundRecord) {
    if (processor === retryPipeline) retryRecords.push(record);
    scheduler.offer(record.topic, record.partition, {
      offset: record.offset,
      lane: laneOf(options.ordering ?? "none", record.topic, record.partition, record.key),
      at: processor.startAt(record),
      run: (signals) => processor.process(record, signals),
      handOver: (signals) => processor.handOver(record, signals),
    });
  }

  return {
    deps,
    events,
    retries,
    attempts,
    delivered,
    published,
    refused,
    retryRecords,
    /** Offers one event record on partition 0 of the events topic; returns it. */
    produce(value: string | null, headers: Record<string, string>, key: string | null = null): InboundRecord {
      const record: InboundRecord = {
        topic: TOPICS.events,
        partition: 0,
        offset: nextOffset(TOPICS.events),
        key: key === null ? null : Buffer.from(key),
        value: value === null ? null : Buffer.from(value),
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
        timestamp: String(Date.now()),
      };
      offer(events, eventPipeline, record);
      return record;
    },
    topic: (topic: string) => published.filter((p) => p.topic === topic).map((p) => p.record),
    /** The offset each scheduler would commit now, per topic. */
    committable: () => new Map([...events.uncommitted(), ...retries.uncommitted()].map((o) => [o.topic, o.offset])),
  };
}

function toInbound(topic: string, offset: string, record: OutboundRecord): InboundRecord {
  const headers = Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, Buffer.from(v)]));
  const key = record.key === null ? null : Buffer.from(record.key);
  return { topic, partition: 0, offset, key, value: Buffer.from(record.value), headers, timestamp: String(Date.now()) };
}
