import type { Admin, Consumer, EachBatchPayload, Kafka } from "kafkajs";
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import { abortableSleep } from "../shared/abortable-sleep.js";
import type { RecordProcessor } from "./record-processor.js";
import { laneOf, RecordScheduler } from "./record-scheduler.js";

export interface ConsumerRunnerOptions {
  name: string;
  kafka: Kafka;
  groupId: string;
  topics: (string | RegExp)[];
  fromBeginning: boolean;
  maxInFlight: number;
  ordering: "none" | "key" | "partition";
  sessionTimeoutMs: number;
  processor: RecordProcessor;
  logger: Logger;
  /** Records received and not yet ended, per partition, above which fetching it pauses. */
  maxBufferedPerPartition?: number | ((topic: string) => number);
  /**
   * Without maxBufferedPerPartition: the same for all partitions together (`kafka.max-buffered`),
   * shared by those the member has, at least 64 each. Default BUFFERED_PER_IN_FLIGHT × maxInFlight.
   */
  maxBuffered?: number | undefined;
  /** See SchedulerOptions.yieldTo. */
  yieldTo?: { busy: () => boolean; share: number };
  /** Told when fetching stops and resumes because buffered work is full. */
  onPausedChange?: (paused: boolean) => void;
  commitIntervalMs?: number;
  /**
   * The longest a member that gains a partition waits for its previous owner to release it, and
   * how long one that loses a partition has to finish (or hand over) its work on it and commit.
   * See `onJoin`.
   */
  handoverGraceMs?: number;
}

/**
 * The metadata of the last commit a member makes for a partition it lets go (revoked, or on
 * stop): the next owner may start it at once instead of waiting out the grace.
 */
export const RELEASED = "callback-sidecar:released";
/**
 * The buffered-record budget (`kafka.max-buffered`) when unset, per max-in-flight. Four times
 * fetched further ahead (a quarter more rate in the bench) but left a member so much started work
 * that a scale-up under a backlog could not hand it all over in time: 499 and 814 of 20,000
 * delivered twice in 2 of 6 replica runs, none at twice (docs/operations.md#sizing).
 */
const BUFFERED_PER_IN_FLIGHT = 2;
/** How often a member waiting to take partitions over reads their committed offsets. */
const RELEASE_POLL_MS = 100;

type TopicPartition = { topic: string; partition: number };
type Committed = { offset: string | undefined; released: boolean };
const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * A consumer group member with at-least-once processing: the scheduler decides when records run
 * and what may be committed; this class is the kafkajs side of it (fetching, pausing, commits,
 * membership). eachBatch never waits: it hands the batch to the scheduler and returns, and
 * backpressure pauses single partitions.
 *
 * Rebalances are made cheap on both sides, because kafkajs rejoins without a revoke callback:
 * - a member that keeps a partition keeps its progress and skips what kafkajs fetches again from
 *   the committed offset, so nothing runs twice in one process;
 * - a member that loses a partition stops starting its records, lets running ones finish or hand
 *   over within part of the grace, and commits its last offset marked RELEASED (the broker takes a
 *   commit from a current member for any partition);
 * - a member that gains a partition holds its records until the previous owner's RELEASED commit
 *   shows (read every RELEASE_POLL_MS) or the grace is over, then drops what that owner finished.
 *   A member alone in its group starts at once: nobody else can still be working the partition
 *   (one that left committed first; one that died can commit nothing more).
 */
export class ConsumerRunner {
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly scheduler: RecordScheduler;
  private readonly stopping = new AbortController();
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();
  private running = false;
  private joined = false;
  private memberId: string | undefined;
  private lastHeartbeat = 0;
  private readonly graceMs: number;
  private reportedPaused = false;
  /** Partitions being let go (revoked), until their last offset is committed. */
  private readonly leaving = new Map<string, Promise<void>>();
  /** Per partition let go: the offset below which this member finished every record. */
  private readonly finishedBelow = new Map<string, string>();

  constructor(private readonly options: ConsumerRunnerOptions) {
    this.graceMs = options.handoverGraceMs ?? 2_000;
    this.scheduler = new RecordScheduler({
      maxInFlight: options.maxInFlight,
      // Buffered records are where the memory goes (a record waiting for its host has started and
      // lent its slot), so the consumer has a budget shared by its partitions, rather than a cap per
      // partition that would grow with the partition count.
      maxBufferedPerPartition:
        options.maxBufferedPerPartition ??
        (() =>
          Math.max(
            64,
            Math.ceil((options.maxBuffered ?? BUFFERED_PER_IN_FLIGHT * options.maxInFlight) / Math.max(1, this.scheduler.partitionCount)),
          )),
      yieldTo: options.yieldTo,
      logger: options.logger,
      onPause: (topic, partition, paused) => this.setPaused(topic, partition, paused),
    });
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      // kafkajs heartbeats, rejoins and leaves only between fetches: a long fetch wait slows all three.
      maxWaitTimeInMs: 500,
      // A fetch holds up to this much of every partition in memory at once; the scheduler buffers
      // at most max-in-flight records per partition anyway, so kafkajs' 1 MB / 10 MB only cost RSS.
      maxBytesPerPartition: 256 * 1024,
      maxBytes: 4 * 1024 * 1024,
      heartbeatInterval: Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3)),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    // Each take-over of a regained partition, and each let-go retrying its last commit, waits on this signal.
    setMaxListeners(0, this.stopping.signal);
    this.admin = options.kafka.admin();
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.joined = true;
      this.memberId = payload.memberId;
      this.lastHeartbeat = Date.now();
      this.options.logger.info({ consumer: options.name, assignment: payload.memberAssignment }, "joined consumer group");
      void this.onJoin(payload.memberAssignment);
    });
    this.consumer.on(events.REBALANCING, () => {
      // Stop starting records and commit what is done while the old generation still may.
      this.scheduler.hold();
      void this.commit();
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

  /**
   * Tried again while Kafka is unreachable at start-up, or while another consumer's start fails
   * (sidecar.ts): a runner that already runs stays as it is.
   */
  async start(): Promise<void> {
    if (this.running) return;
    await this.admin.connect();
    // The admin's first group request takes a few hundred ms (finding and reaching the group's
    // coordinator); made now, while the consumer joins, the take-over's reads are quick.
    void this.admin.describeGroups([this.options.groupId]).catch(() => undefined);
    await this.consumer.connect();
    try {
      await this.consumer.subscribe({ topics: this.options.topics, fromBeginning: this.options.fromBeginning });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // Batches of every partition are taken at once; they only hand records to the scheduler.
        partitionsConsumedConcurrently: 16,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (error) {
      // kafkajs keeps a consumer whose run() failed marked as running, refusing the next subscribe.
      await this.consumer.stop().catch(() => undefined);
      throw error;
    }
    this.running = true;
    this.commitTimer = setInterval(() => void this.commit(), this.options.commitIntervalMs ?? 200);
  }

  /** In the group, hearing from the broker recently, and working its partitions (none held). */
  isReady(): boolean {
    return (
      this.joined &&
      !this.scheduler.anyHeld &&
      !this.stopping.signal.aborted &&
      Date.now() - this.lastHeartbeat < Math.max(this.options.sessionTimeoutMs, 10_000)
    );
  }

  get inFlight(): number {
    return this.scheduler.inFlight;
  }

  /** Every in-flight slot taken. */
  get saturated(): boolean {
    return this.scheduler.saturated;
  }

  /** Stops fetching, lets in-flight work finish or hand over until `deadlineAt`, commits, leaves. */
  async stop(deadlineAt: number): Promise<void> {
    this.stopping.abort();
    try {
      this.consumer.pause(this.scheduler.owned().map(({ topic, partition }) => ({ topic, partitions: [partition] })));
    } catch {
      // Not running yet: nothing to pause.
    }
    const last = await this.scheduler.stop(deadlineAt);
    clearInterval(this.commitTimer);
    await this.committing;
    if (last.length > 0) await this.commitOffsets(last.map((o) => ({ ...o, metadata: RELEASED })));
    await this.consumer.disconnect();
    await this.admin.disconnect().catch(() => undefined);
  }

  private async eachBatch({ batch, resolveOffset, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const { processor, ordering } = this.options;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping.signal.aborted) return;
      const record = {
        topic,
        partition,
        offset: message.offset,
        key: message.key ?? null,
        value: message.value ?? null,
        headers: message.headers,
        timestamp: message.timestamp,
      };
      this.scheduler.offer(topic, partition, {
        offset: message.offset,
        lane: laneOf(ordering, topic, partition, record.key),
        at: processor.startAt(record),
        run: (signals) => processor.process(record, signals),
        handOver: (signals) => processor.handOver(record, signals),
      });
      // Moves kafkajs' fetch position; what is committed is the scheduler's business.
      resolveOffset(message.offset);
    }
  }

  private async onJoin(assignment: Record<string, number[]>): Promise<void> {
    const assigned = new Set(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((p) => tpKey(topic, p))));
    const owned = this.scheduler.owned();
    const revoked = owned.filter(({ topic, partition }) => !assigned.has(tpKey(topic, partition)));
    const known = new Set(owned.map(({ topic, partition }) => tpKey(topic, partition)));
    const gained: TopicPartition[] = [];
    const regained: Promise<void>[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const leaving = this.leaving.get(tpKey(topic, partition));
        if (leaving) {
          // Back before we finished letting it go: its records were refused meanwhile, so once the
          // let-go is over it starts again like a gained one, from its committed offset.
          regained.push(leaving.then(() => (this.scheduler.assign(topic, partition, true), this.takeOver([{ topic, partition }], true))));
          continue;
        }
        if (known.has(tpKey(topic, partition))) continue;
        this.scheduler.assign(topic, partition, true);
        gained.push({ topic, partition });
      }
    }
    this.scheduler.resume();
    for (const { topic, partition } of revoked) {
      const done = (async () => {
        // Leave the new owner a margin of the grace to see our last commit.
        const offset = await this.scheduler.letGo(topic, partition, Date.now() + this.graceMs * 0.75);
        if (offset === undefined) return;
        // Should the partition come back here before the group has our commit, what we finished
        // must not run again.
        this.finishedBelow.set(tpKey(topic, partition), offset);
        // A lost last commit makes the next owner run again what we finished: tried until it lands,
        // for as long as the next owner waits for it.
        const until = Date.now() + this.graceMs;
        while (!(await this.commitOffsets([{ topic, partition, offset, metadata: RELEASED }])) && Date.now() < until)
          await abortableSleep(RELEASE_POLL_MS, this.stopping.signal).catch(() => undefined);
      })().finally(() => {
        if (this.leaving.get(tpKey(topic, partition)) === done) this.leaving.delete(tpKey(topic, partition));
      });
      this.leaving.set(tpKey(topic, partition), done);
    }
    await Promise.all([...this.leaving.values(), this.takeOver(gained), ...regained]);
  }

  /**
   * Starts gained partitions from the offset their previous owner last committed, each as soon as
   * that owner released it (or at once when this member is alone in the group), the rest when the
   * grace is over. `seek`: kafkajs' fetch position is past records this member refused, so fetch
   * them again.
   */
  private async takeOver(gained: TopicPartition[], seek = false): Promise<void> {
    if (gained.length === 0) return;
    const deadline = Date.now() + this.graceMs;
    const alone = await this.aloneInGroup();
    let waiting = gained;
    for (;;) {
      const committed = await this.committedOffsets(waiting);
      const due = alone || Date.now() >= deadline || this.stopping.signal.aborted;
      const starting = due ? waiting : waiting.filter(({ topic, partition }) => committed?.get(tpKey(topic, partition))?.released);
      if (due && committed === undefined)
        // Without the offsets, start from where kafkajs started: at worst what the previous owner just finished runs again.
        this.options.logger.warn({ consumer: this.options.name }, "could not re-read committed offsets of gained partitions");
      this.startGained(starting, committed, seek);
      waiting = waiting.filter((tp) => !starting.includes(tp));
      if (waiting.length === 0) return;
      await abortableSleep(Math.min(RELEASE_POLL_MS, deadline - Date.now()), this.stopping.signal).catch(() => undefined);
    }
  }

  private startGained(partitions: TopicPartition[], committed: Map<string, Committed> | undefined, seek: boolean): void {
    const clear: { topic: string; partition: number; offset: string }[] = [];
    for (const { topic, partition } of partitions) {
      const group = committed?.get(tpKey(topic, partition));
      let offset = group?.offset;
      // Back here: the group's offset may lag ours, if our last commit was lost.
      const ours = this.finishedBelow.get(tpKey(topic, partition));
      this.finishedBelow.delete(tpKey(topic, partition));
      if (ours !== undefined && (offset === undefined || BigInt(ours) > BigInt(offset))) offset = ours;
      // Seek first: from then on kafkajs hands over no batch from its old position.
      const refetch = seek && offset !== undefined;
      if (seek && offset !== undefined) this.consumer.seek({ topic, partition, offset });
      const dropped = this.scheduler.release(topic, partition, offset, refetch);
      if (dropped > 0)
        this.options.logger.info({ consumer: this.options.name, topic, partition, dropped }, "skipped records the previous owner finished");
      // The mark is ours to clear now: left standing while this member works the partition, it
      // would let a later owner start before this one hands over. (A lagging offset is set right.)
      if (offset !== undefined && (group?.released || offset !== group?.offset)) clear.push({ topic, partition, offset });
    }
    // In the commit queue, so no later commit of ours is overtaken by it.
    if (clear.length > 0) this.committing = this.committing.then(async () => void (await this.commitOffsets(clear)));
  }

  /** This member is the group's only one (false when that cannot be told). */
  private async aloneInGroup(): Promise<boolean> {
    try {
      const { groups } = await this.admin.describeGroups([this.options.groupId]);
      const members = groups[0]?.members ?? [];
      return members.length === 1 && members[0]?.memberId === this.memberId;
    } catch {
      return false;
    }
  }

  /** The group's committed offsets of these partitions, or undefined when they cannot be read. */
  private async committedOffsets(partitions: TopicPartition[]): Promise<Map<string, Committed> | undefined> {
    try {
      const committed = new Map<string, Committed>();
      const topics = [...new Set(partitions.map((p) => p.topic))];
      for (const entry of await this.admin.fetchOffsets({ groupId: this.options.groupId, topics })) {
        for (const p of entry.partitions)
          committed.set(tpKey(entry.topic, p.partition), {
            offset: BigInt(p.offset) >= 0n ? p.offset : undefined,
            released: p.metadata === RELEASED,
          });
      }
      return committed;
    } catch (error) {
      this.options.logger.debug({ consumer: this.options.name, err: (error as Error).message }, "committed offsets not read");
      return undefined;
    }
  }

  private setPaused(topic: string, partition: number, paused: boolean): void {
    try {
      if (paused) this.consumer.pause([{ topic, partitions: [partition] }]);
      else this.consumer.resume([{ topic, partitions: [partition] }]);
    } catch (error) {
      this.options.logger.debug(
        { consumer: this.options.name, topic, partition, err: (error as Error).message },
        "pause/resume not applied",
      );
    }
    const any = this.scheduler.anyPaused;
    if (any !== this.reportedPaused) {
      this.reportedPaused = any;
      this.options.onPausedChange?.(any);
    }
  }

  private commit(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const offsets = this.scheduler.uncommitted();
      if (offsets.length > 0) await this.commitOffsets(offsets);
    });
    return this.committing;
  }

  /** False when the commit failed (logged). */
  private async commitOffsets(offsets: { topic: string; partition: number; offset: string; metadata?: string }[]): Promise<boolean> {
    try {
      await this.consumer.commitOffsets(offsets);
      this.scheduler.markCommitted(offsets);
      return true;
    } catch (error) {
      this.options.logger.warn({ consumer: this.options.name, err: (error as Error).message }, "offset commit failed; will retry");
      return false;
    }
  }
}
