import type { Logger } from "pino";
import type { SidecarSettings } from "../config/settings.js";
import { HostSlots } from "../delivery/host-slots.js";
import { RateLimiter } from "../delivery/rate-limiter.js";
import { startAdminServer } from "../http/admin-server.js";
import { createKafka } from "../kafka/client.js";
import { ConsumerRunner } from "../kafka/consumer-runner.js";
import { handoffKeys } from "../kafka/handoff-mac.js";
import { DurablePublisher } from "../kafka/publisher.js";
import { retryBacklog } from "../kafka/retry-backlog.js";
import { RetryTiers } from "../domain/retry-tiers.js";
import { ensureTopics, TIER_BUFFERED_PER_PARTITION } from "../kafka/topic-setup.js";
import { createMetrics } from "../observability/metrics.js";
import type { LogContext } from "../observability/logger.js";
import { startTracing } from "../observability/tracing.js";
import { VERSION } from "../version.js";
import { EventPipeline } from "../pipeline/event-pipeline.js";
import type { PipelineDeps } from "../pipeline/pipeline-deps.js";
import { RetryPipeline } from "../pipeline/retry-pipeline.js";
import { abortableSleep } from "../shared/abortable-sleep.js";
import { hasCode, type SidecarError } from "../shared/errors.js";
import { createDeliveryEngine } from "./delivery-engine.js";

export interface RunningSidecar {
  adminPort: number;
  /** Settles with the reason when the sidecar cannot run with the cluster as it is (never otherwise). */
  refused: Promise<SidecarError>;
  /** Stops fetching, drains within the shutdown grace, commits, disconnects. */
  stop(): Promise<void>;
}

/** Wiring and lifecycle of `callback-sidecar run`; nothing else lives here. */
export async function startSidecar(settings: SidecarSettings, logger: Logger, logContext?: LogContext): Promise<RunningSidecar> {
  const metrics = createMetrics();
  const tracing = await startTracing(settings.tracing.enabled, {
    serviceVersion: VERSION,
    consumerGroup: settings.kafka.groupId,
    protocol: settings.tracing.protocol,
    logger,
    setLogContext: (ids) => {
      if (logContext) logContext.ids = ids;
    },
  });
  const exposed = settings.server.executions;
  const engine = createDeliveryEngine(settings, logger, metrics, {
    keepExecutions: exposed.enabled,
    keepPayloads: exposed.enabled && exposed.includePayloads,
  });
  const kafka = createKafka(settings.kafka, logger);
  const publisher = new DurablePublisher(kafka, logger.child({ component: "publisher" }), {
    onRefused: (topic, reason) => metrics.handoffRefused.inc({ topic, reason }),
  });
  const tiers = new RetryTiers(settings.retry.topic, settings.retry.tiersMs);
  const deps: PipelineDeps = {
    dispatcher: engine.dispatcher,
    configs: engine.configs,
    executions: engine.executions,
    publisher,
    hostSlots: new HostSlots(settings.http.maxConnectionsPerHost),
    breakers: engine.breakers,
    topics: { retry: settings.retry.topic, deadLetter: settings.deadLetter.topic },
    tiers,
    rateLimiter: new RateLimiter(),
    handoffKeys: (configId) => handoffKeys(settings.handoff.keys, engine.configs.findById(configId)),
    origin: settings.kafka.groupId,
    tenantAttribute: settings.kafka.cloudEventsTenantAttribute,
    headerNames: { tenant: settings.kafka.tenantHeader, eventType: settings.kafka.eventTypeHeader, eventId: settings.kafka.eventIdHeader },
    inProcessBudgetMs: settings.retry.inProcessBudgetMs,
    jitter: settings.retry.jitter,
    logger,
    metrics,
    tracing,
    now: Date.now,
  };
  const retryGroupId = `${settings.kafka.groupId}.retry`;
  const common = {
    kafka,
    maxInFlight: settings.kafka.maxInFlight,
    sessionTimeoutMs: settings.kafka.sessionTimeoutMs,
    logger,
  };
  const events = new ConsumerRunner({
    ...common,
    name: "events",
    groupId: settings.kafka.groupId,
    topics: settings.kafka.topicPattern !== undefined ? [new RegExp(settings.kafka.topicPattern)] : settings.kafka.topics,
    fromBeginning: settings.kafka.fromBeginning,
    ordering: settings.kafka.ordering,
    maxBuffered: settings.kafka.maxBuffered,
    processor: new EventPipeline(deps),
    onPausedChange: (paused) => metrics.consumerPaused.set(paused ? 1 : 0),
  });
  const retries = new ConsumerRunner({
    ...common,
    name: "retries",
    groupId: retryGroupId,
    topics: tiers.topics(),
    fromBeginning: true,
    ordering: "none",
    processor: new RetryPipeline(deps),
    // Retries in the retry topic wait for their due time without a slot; many may wait at once,
    // cheaply. A tier is first-in-first-due: behind a head that is not due, nothing is.
    maxBufferedPerPartition: (topic) => (tiers.delayOf(topic) === undefined ? 10_000 : TIER_BUFFERED_PER_PARTITION),
    // Fresh events first: while the event consumer is saturated, retries keep a small share, so a
    // dead endpoint's retry churn cannot slow healthy deliveries.
    yieldTo: { busy: () => events.saturated, share: Math.max(4, Math.floor(settings.kafka.maxInFlight / 16)) },
  });
  const admin = await startAdminServer({
    host: settings.server.host,
    port: settings.server.port,
    registry: metrics.registry,
    executions: engine.executions,
    executionsEndpoint: settings.server.executions,
    isReady: () => events.isReady() && retries.isReady(),
    logger,
  });

  const backlogAdmin = kafka.admin();
  let backlogConnected = false;
  metrics.readRetryBacklogFrom(async () => {
    if (!backlogConnected) return undefined;
    // A scrape must not hang on an unreachable broker; the last value stays until Kafka answers.
    return Promise.race([
      retryBacklog(backlogAdmin, tiers.topics(), retryGroupId).catch(() => undefined),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2_000).unref()),
    ]);
  });

  const stopping = new AbortController();
  let refuse: (error: SidecarError) => void = () => undefined;
  const refused = new Promise<SidecarError>((resolve) => (refuse = resolve));
  // Kafka may be down when we start: keep trying (readiness says not ready) rather than exit.
  const started = (async () => {
    for (let attempt = 1; !stopping.signal.aborted; attempt++) {
      try {
        // Independent steps run side by side: start-up is mostly waiting for the broker.
        await Promise.all([ensureTopics(kafka, [...tiers.topics(), settings.deadLetter.topic], tiers, logger), publisher.connect()]);
        await Promise.all([events.start(), retries.start(), backlogAdmin.connect()]);
        backlogConnected = true;
        logger.info(
          { brokers: settings.kafka.brokers, group: settings.kafka.groupId, admin_port: admin.port },
          "callback-sidecar consuming",
        );
        return;
      } catch (error) {
        // Retrying cannot fix a cluster set up to lose retries: say so and stop.
        if (hasCode(error, "TIER_RETENTION_TOO_SHORT")) return refuse(error);
        logger.error({ attempt, err: (error as Error).message }, "cannot start consuming yet; retrying");
        await abortableSleep(Math.min(1000 * attempt, 10_000), stopping.signal).catch(() => undefined);
      }
    }
  })();

  return {
    adminPort: admin.port,
    refused,
    async stop() {
      const deadlineAt = Date.now() + settings.shutdownGraceMs;
      stopping.abort();
      // A start still retrying against an unreachable Kafka has nothing to drain; don't let its
      // retries outlast the grace.
      await Promise.race([started, abortableSleep(Math.max(0, deadlineAt - Date.now()))]);
      await Promise.allSettled([events.stop(deadlineAt), retries.stop(deadlineAt)]);
      await publisher.disconnect().catch(() => undefined);
      await backlogAdmin.disconnect().catch(() => undefined);
      await engine.close();
      await tracing
        ?.shutdown()
        .catch((error: unknown) => logger.warn({ err: (error as Error).message }, "could not export the last spans"));
      await admin.close();
    },
  };
}
