import { setMaxListeners } from "node:events";
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs";
import type { Logger } from "pino";
import { abortableSleep } from "../shared/abortable-sleep.js";
import { acquireWithin, KeyedSequencer, Semaphore } from "./concurrency.js";
import { OffsetTracker } from "./offset-tracker.js";

export interface RecordContext {
  topic: string;
  partition: number;
  message: KafkaMessage;
  /** Aborts when the sidecar starts to stop: stop waiting, hand work over durably. */
  stopping: AbortSignal;
  /** Aborts when the shutdown grace is over: give up; the record stays uncommitted. */
  deadline: AbortSignal;
}

/** Resolves when the record is done (every delivery final or handed to a durable topic). */
export type RecordHandler = (context: RecordContext) => Promise<void>;

export interface ConsumerRunnerOptions {
  name: string;
  kafka: Kafka;
  groupId: string;
  topics: (string | RegExp)[];
  fromBeginning: boolean;
  maxInFlight: number;
  ordering: "none" | "key" | "partition";
  sessionTimeoutMs: number;
  handler: RecordHandler;
  logger: Logger;
  /**
   * Gives another consumer precedence: while `busy()` says it is saturated, this one keeps at most
   * `share` records in flight (the retry consumer yields to fresh events this way).
   */
  yieldTo?: { busy: () => boolean; share: number };
  /** Told when fetching stops and resumes because in-flight work is full. */
  onPausedChange?: (paused: boolean) => void;
  commitIntervalMs?: number;
}

const HEARTBEAT_WHILE_WAITING_MS = 1_000;
const YIELD_RECHECK_MS = 100;

/**
 * Runs a consumer group member with at-least-once processing: records run concurrently up to
 * `maxInFlight`, a partition's committed offset is the lowest record not yet done, and fetching
 * stops while in-flight work is full (eachBatch waits for a slot, heartbeating meanwhile), so
 * memory stays bounded.
 */
export class ConsumerRunner {
  private readonly consumer: Consumer;
  private readonly slots: Semaphore;
  private readonly tracker = new OffsetTracker();
  private readonly sequencer = new KeyedSequencer();
  private readonly stopping = new AbortController();
  private readonly deadline = new AbortController();
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();
  private assigned: { topic: string; partitions: number[] }[] = [];
  private joined = false;
  private lastHeartbeat = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ConsumerRunnerOptions) {
    // Every waiting delivery listens to these; hundreds of listeners are expected, not a leak.
    setMaxListeners(0, this.stopping.signal, this.deadline.signal);
    this.slots = new Semaphore(options.maxInFlight);
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      // kafkajs heartbeats, rejoins and leaves only between fetches: a long fetch wait slows all three.
      maxWaitTimeInMs: 1_000,
      heartbeatInterval: Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3)),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.joined = true;
      this.lastHeartbeat = Date.now();
      this.assigned = Object.entries(payload.memberAssignment).map(([topic, partitions]) => ({ topic, partitions }));
      this.tracker.newGeneration();
      this.options.logger.info({ consumer: options.name, assignment: payload.memberAssignment }, "joined consumer group");
    });
    const seen = () => {
      this.lastHeartbeat = Date.now();
    };
    this.consumer.on(events.HEARTBEAT, seen);
    this.consumer.on(events.FETCH, seen);
    this.consumer.on(events.COMMIT_OFFSETS, seen);
    const left = (why: string) => () => {
      this.joined = false;
      const level = this.stopping.signal.aborted ? "info" : "warn";
      this.options.logger[level]({ consumer: options.name, why }, "not in the consumer group");
    };
    this.consumer.on(events.CRASH, ({ payload }) => {
      left("crash")();
      this.options.logger.error({ consumer: options.name, err: payload.error.message, restart: payload.restart }, "consumer crashed");
    });
    this.consumer.on(events.DISCONNECT, left("disconnect"));
    this.consumer.on(events.STOP, left("stop"));
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.options.topics, fromBeginning: this.options.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.commitTimer = setInterval(() => void this.commit(), this.options.commitIntervalMs ?? 500);
  }

  /** In the group and hearing from the broker recently. */
  isReady(): boolean {
    return this.joined && !this.stopping.signal.aborted && Date.now() - this.lastHeartbeat < Math.max(this.options.sessionTimeoutMs, 10_000);
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  /** Every in-flight slot taken: fetching has stopped until one frees. */
  get saturated(): boolean {
    return this.slots.full;
  }

  /** Stops fetching, lets in-flight work finish until `deadlineAt`, commits what is done, leaves. */
  async stop(deadlineAt: number): Promise<void> {
    this.stopping.abort();
    try {
      this.consumer.pause(this.assigned.map(({ topic }) => ({ topic })));
    } catch {
      // Not running yet: nothing to pause.
    }
    const idle = new Promise<void>((resolve) => (this.slots.inUse === 0 ? resolve() : this.idleWaiters.push(resolve)));
    const remaining = Math.max(0, deadlineAt - Date.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, remaining)))]);
    clearTimeout(timer);
    if (this.slots.inUse > 0) {
      this.options.logger.warn({ consumer: this.options.name, inFlight: this.slots.inUse }, "shutdown grace over; unfinished records stay uncommitted and will be redelivered");
    }
    this.deadline.abort();
    clearInterval(this.commitTimer);
    await this.commit();
    await this.consumer.disconnect();
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping.signal.aborted) return;
      if (!(await this.acquireSlot(heartbeat))) return;
      const progress = this.tracker.begin(topic, partition, message.offset);
      const context: RecordContext = { topic, partition, message, stopping: this.stopping.signal, deadline: this.deadline.signal };
      const run = () =>
        this.options.handler(context).then(
          () => progress.complete(message.offset),
          (error: unknown) => {
            // Only a shutdown abandons a record; it stays uncommitted and is redelivered.
            this.options.logger.warn({ topic, partition, offset: message.offset, err: (error as Error)?.message }, "record left unfinished");
          },
        );
      const done = this.sequenced(topic, partition, message, run).finally(() => {
        this.slots.release();
        if (this.slots.inUse === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
      });
      void done;
      resolveOffset(message.offset);
    }
    await heartbeat();
  }

  private sequenced(topic: string, partition: number, message: KafkaMessage, run: () => Promise<void>): Promise<void> {
    switch (this.options.ordering) {
      case "partition":
        return this.sequencer.run(`${topic}\u0000${partition}`, run);
      case "key":
        return message.key && message.key.length > 0 ? this.sequencer.run(`${topic}\u0000${partition}\u0000${message.key.toString("base64")}`, run) : run();
      case "none":
        return run();
    }
  }

  private mayTake(): boolean {
    const y = this.options.yieldTo;
    return y === undefined || this.slots.inUse < y.share || !y.busy();
  }

  /** Waits for an in-flight slot, heartbeating so a long wait does not cost group membership. */
  private async acquireSlot(heartbeat: () => Promise<void>): Promise<boolean> {
    if (this.mayTake() && this.slots.tryAcquire()) return true;
    this.options.onPausedChange?.(true);
    try {
      let beatAt = Date.now();
      while (!this.stopping.signal.aborted) {
        if (this.mayTake()) {
          if (await acquireWithin(this.slots, YIELD_RECHECK_MS, this.stopping.signal)) return true;
        } else {
          await abortableSleep(YIELD_RECHECK_MS, this.stopping.signal).catch(() => undefined);
        }
        if (Date.now() - beatAt >= HEARTBEAT_WHILE_WAITING_MS) {
          await heartbeat();
          beatAt = Date.now();
        }
      }
      return false;
    } finally {
      this.options.onPausedChange?.(false);
    }
  }

  private commit(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const offsets = this.tracker.uncommitted();
      if (offsets.length === 0) return;
      try {
        await this.consumer.commitOffsets(offsets);
        this.tracker.markCommitted(offsets);
      } catch (error) {
        this.options.logger.warn({ consumer: this.options.name, err: (error as Error).message }, "offset commit failed; will retry");
      }
    });
    return this.committing;
  }
}
