import type { Logger } from "pino";
import type { Dispatcher } from "../delivery/dispatcher.js";
import type { HostSlots } from "../delivery/host-slots.js";
import type { RateLimiter } from "../delivery/rate-limiter.js";
import type { OutboundRecord } from "../kafka/handoff-records.js";
import type { HeaderNames } from "../kafka/record-decoder.js";
import type { RetryTiers } from "../domain/retry-tiers.js";
import type { Metrics } from "../observability/metrics.js";
import type { Tracing } from "../observability/tracing.js";
import type { ConfigRepository } from "../repository/config-repository.js";
import type { ExecutionStore } from "../repository/execution-store.js";

/** Where retry and dead-letter records go: Kafka in the sidecar, a fake in unit tests. */
export interface HandoffPublisher {
  /** Resolves once durable; rejects with HANDOFF_REFUSED (for good) or when `signal` aborts. */
  publish(topic: string, record: OutboundRecord, signal?: AbortSignal): Promise<void>;
}

/** What the pipeline asks of the breakers: when an open one lets its next probe through. */
export interface BreakerView {
  reopensAt(targetHost: string): number | undefined;
}

/** The pipeline's seams: everything it touches outside itself comes in here. */
export interface PipelineDeps {
  dispatcher: Dispatcher;
  configs: ConfigRepository;
  executions: ExecutionStore;
  publisher: HandoffPublisher;
  hostSlots: HostSlots;
  breakers: BreakerView;
  topics: { retry: string; deadLetter: string };
  /** Where a wait of a given length is written: the retry topic or a delay tier. */
  tiers: RetryTiers;
  /** Shared by both pipelines, so a limit holds over fresh deliveries and retries alike. */
  rateLimiter: RateLimiter;
  /** Keys for a config's handoff records: the first signs, all verify (see kafka/handoff-mac.ts). */
  handoffKeys: (configId: string) => Buffer[];
  /** This deployment's name on the retry records it writes (its consumer group id). */
  origin: string;
  headerNames: HeaderNames;
  /** The CloudEvents extension attribute naming the tenant in structured and batched records. */
  tenantAttribute: string;
  /** How long a fresh delivery may wait in process (backoff, a limit, a busy host) before handing over. */
  inProcessBudgetMs: number;
  jitter: number;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Spans for records and attempts; undefined when tracing is off. */
  tracing?: Tracing | undefined;
  now: () => number;
}
