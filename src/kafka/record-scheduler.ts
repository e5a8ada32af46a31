import type { Logger } from "pino";
import { PartitionProgress } from "./partition-progress.js";
import type { RecordEnd, RecordSignals, Work } from "./record-processor.js";

/*
 * When each consumed record runs, and which offsets may be committed. Kafka-free, so its rules are
 * unit-tested without a broker; consumer-runner.ts feeds it records and commits what it says.
 *
 *   offer ─► (held: partition just assigned, previous owner may still commit)
 *         ─► lane queue (ordering key/partition: behind the record ahead of it)
 *         ─► parked (not due yet: no slot) ─► ready ─► running (one in-flight slot)
 *                                                        │ done / abandoned ─► progress, next in lane
 *                                                        └ later ──────────► parked
 *
 * A slot is taken only when a record can start, so one partition's queue never holds the others
 * back; memory is bounded per partition instead, by pausing a partition whose buffered records
 * reach `maxBufferedPerPartition` and resuming it at half of that.
 */

export interface ScheduledRecord {
  offset: string;
  /** Records with the same lane run one after another, in offset order (see `laneOf`). */
  lane: string | undefined;
  /** Epoch ms before which it must not start. */
  at: number;
  run: Work;
  /** Makes the record durable elsewhere when the member lets go of it while it waits. */
  handOver: Work;
}

export interface SchedulerOptions {
  maxInFlight: number;
  /** Per topic: a delay tier needs only its heads in memory, the retry topic more (see retry-tiers.ts). */
  maxBufferedPerPartition: number | ((topic: string) => number);
  /**
   * Gives another consumer precedence: while `busy()` says it is saturated, this one keeps at most
   * `share` records in flight (the retry consumer yields to fresh events this way).
   */
  yieldTo?: { busy: () => boolean; share: number } | undefined;
  /** Told to stop or restart fetching a partition. */
  onPause: (topic: string, partition: number, paused: boolean) => void;
  logger: Logger;
  now?: () => number;
}

interface Entry {
  partition: PartitionState;
  offset: string;
  lane: string | undefined;
  at: number;
  run: Work;
  handOver: Work;
}

class PartitionState {
  readonly progress = new PartitionProgress();
  /** Offsets below this were already received by this member: a refetch after a rebalance skips them. */
  nextOffset: bigint | undefined;
  buffered = 0;
  running = 0;
  paused = false;
  leaving = false;
  committed: string | undefined;
  /** Set while a newly assigned partition waits for its previous owner's last commit. */
  held: Entry[] | undefined;
  readonly stopping = new AbortController();
  readonly deadline = new AbortController();
  readonly signals: RecordSignals;
  private idle: (() => void)[] = [];

  constructor(
    readonly topic: string,
    readonly partition: number,
    consumer: RecordSignals,
  ) {
    this.signals = {
      stopping: AbortSignal.any([consumer.stopping, this.stopping.signal]),
      deadline: AbortSignal.any([consumer.deadline, this.deadline.signal]),
    };
  }

  whenIdle(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  settled(): void {
    if (this.running === 0) this.idle.splice(0).forEach((resolve) => resolve());
  }
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** The lane of a record under an ordering: one per partition, one per key, or none. */
export function laneOf(ordering: "none" | "key" | "partition", topic: string, partition: number, key: Buffer | null): string | undefined {
  switch (ordering) {
    case "partition":
      return `${tpKey(topic, partition)}\u0000`;
    case "key":
      return key && key.length > 0 ? `${tpKey(topic, partition)}\u0000${key.toString("base64")}` : undefined;
    case "none":
      return undefined;
  }
}
const YIELD_RECHECK_MS = 100;
const PUMP_SLICE_MS = 20;

export class RecordScheduler {
  private readonly partitions = new Map<string, PartitionState>();
  private readonly lanes = new Map<string, Entry[]>();
  private readonly ready: Entry[] = [];
  private readyHead = 0;
  private parked: Entry[] = [];
  private parkTimer: NodeJS.Timeout | undefined;
  private parkTimerAt = Number.POSITIVE_INFINITY;
  private yieldTimer: NodeJS.Timeout | undefined;
  private running = 0;
  private holding = false;
  private pumping = false;
  private pumpScheduled = false;
  private readonly now: () => number;
  private readonly consumerStopping = new AbortController();
  private readonly consumerDeadline = new AbortController();

  constructor(private readonly options: SchedulerOptions) {
    this.now = options.now ?? Date.now;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Every slot taken: fresh work would wait. */
  get saturated(): boolean {
    return this.running >= this.options.maxInFlight;
  }

  /** Some partition is still held for its previous owner's last commit (see `assign`). */
  get anyHeld(): boolean {
    for (const p of this.partitions.values()) if (p.held) return true;
    return false;
  }

  get anyPaused(): boolean {
    for (const p of this.partitions.values()) if (p.paused) return true;
    return false;
  }

  /** Makes sure a partition is known; `hold` keeps its records back until `release` says from where. */
  assign(topic: string, partition: number, hold: boolean): void {
    const key = tpKey(topic, partition);
    if (this.partitions.has(key)) return;
    const state = new PartitionState(topic, partition, { stopping: this.consumerStopping.signal, deadline: this.consumerDeadline.signal });
    if (hold) state.held = [];
    this.partitions.set(key, state);
  }

  /** Partitions known here, those being let go included. */
  get partitionCount(): number {
    return this.partitions.size;
  }

  /** Partitions worked here, not counting those being let go. */
  owned(): { topic: string; partition: number }[] {
    return [...this.partitions.values()].filter((p) => !p.leaving).map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Takes a consumed record. Returns false when it is not new to this member (a refetch from the
   * committed offset after a rebalance), so nothing runs twice in one process.
   */
  offer(topic: string, partition: number, record: ScheduledRecord): boolean {
    let state = this.partitions.get(tpKey(topic, partition));
    if (!state) {
      this.assign(topic, partition, false);
      state = this.partitions.get(tpKey(topic, partition)) as PartitionState;
    }
    if (state.leaving) return false;
    const offset = BigInt(record.offset);
    if (state.nextOffset !== undefined && offset < state.nextOffset) return false;
    state.nextOffset = offset + 1n;
    const entry: Entry = { partition: state, ...record };
    state.buffered += 1;
    if (!state.paused && state.buffered >= this.capOf(state)) {
      state.paused = true;
      this.options.onPause(topic, partition, true);
    }
    if (state.held) state.held.push(entry);
    else this.admit(entry);
    return true;
  }

  /**
   * Ends the hold of a newly assigned partition: records below `committed` were finished by the
   * previous owner after we were assigned, so they are dropped; the rest run. `refetch`: the
   * consumer reads the partition again from `committed`, so every held record is dropped.
   */
  release(topic: string, partition: number, committed: string | undefined, refetch = false): number {
    const state = this.partitions.get(tpKey(topic, partition));
    if (!state?.held) return 0;
    const held = state.held;
    state.held = undefined;
    if (refetch) {
      state.buffered -= held.length;
      state.nextOffset = undefined;
      this.maybeResume(state);
      return held.length;
    }
    // The group's offset as taken over: what a let-go hands back if nothing moves meanwhile.
    state.committed ??= committed;
    const floor = committed === undefined ? undefined : BigInt(committed);
    let dropped = 0;
    for (const entry of held) {
      if (floor !== undefined && BigInt(entry.offset) < floor) {
        dropped += 1;
        state.buffered -= 1;
        continue;
      }
      this.admit(entry);
    }
    if (floor !== undefined && (state.nextOffset === undefined || state.nextOffset < floor)) state.nextOffset = floor;
    this.maybeResume(state);
    this.pump();
    return dropped;
  }

  /** Stops starting records (a rebalance is under way); running ones go on. */
  hold(): void {
    this.holding = true;
  }

  resume(): void {
    this.holding = false;
    this.pump();
  }

  /**
   * Lets a partition go (revoked, or the consumer stops): records not started are dropped and
   * re-read by the next owner, except those already waiting in `parked`, which are handed over so
   * the offset can pass them; running ones are told to hand over and get until `deadlineAt`.
   * Resolves with the offset to commit last for it (moved or not, so the next owner can be told it
   * is free), or undefined if no offset is known.
   */
  async letGo(topic: string, partition: number, deadlineAt: number): Promise<string | undefined> {
    const state = this.partitions.get(tpKey(topic, partition));
    if (!state) return undefined;
    state.leaving = true;
    state.stopping.abort();
    this.dropQueued(state);
    const parked = this.parked.filter((e) => e.partition === state);
    this.parked = this.parked.filter((e) => e.partition !== state);
    for (const entry of parked) this.start(entry, entry.handOver, false, true);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      state.whenIdle(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineAt - this.now())))),
    ]);
    clearTimeout(timer);
    if (state.running > 0) {
      this.options.logger.warn(
        { topic, partition, running: state.running },
        "grace over; unfinished records stay uncommitted for the next owner",
      );
    }
    state.deadline.abort();
    this.partitions.delete(tpKey(topic, partition));
    return state.progress.committable() ?? state.committed;
  }

  /** The consumer stops: every partition is let go within `deadlineAt`. */
  async stop(deadlineAt: number): Promise<{ topic: string; partition: number; offset: string }[]> {
    this.consumerStopping.abort();
    clearTimeout(this.yieldTimer);
    const owned = this.owned();
    const offsets = await Promise.all(
      owned.map(async ({ topic, partition }) => ({ topic, partition, offset: await this.letGo(topic, partition, deadlineAt) })),
    );
    this.consumerDeadline.abort();
    clearTimeout(this.parkTimer);
    return offsets.filter((o): o is { topic: string; partition: number; offset: string } => o.offset !== undefined);
  }

  /** Offsets that moved since they were last committed, in kafkajs' commitOffsets shape. */
  uncommitted(): { topic: string; partition: number; offset: string }[] {
    const out: { topic: string; partition: number; offset: string }[] = [];
    for (const state of this.partitions.values()) {
      const offset = state.progress.committable();
      if (offset !== undefined && offset !== state.committed) out.push({ topic: state.topic, partition: state.partition, offset });
    }
    return out;
  }

  markCommitted(offsets: { topic: string; partition: number; offset: string }[]): void {
    for (const o of offsets) {
      const state = this.partitions.get(tpKey(o.topic, o.partition));
      if (state) state.committed = o.offset;
    }
  }

  private capOf(state: PartitionState): number {
    const cap = this.options.maxBufferedPerPartition;
    return typeof cap === "number" ? cap : cap(state.topic);
  }

  private admit(entry: Entry): void {
    entry.partition.progress.begin(entry.offset);
    if (entry.lane !== undefined) {
      const queue = this.lanes.get(entry.lane);
      if (queue) {
        queue.push(entry);
        return;
      }
      this.lanes.set(entry.lane, []);
    }
    this.schedule(entry);
  }

  private schedule(entry: Entry): void {
    if (entry.at > this.now()) this.park(entry);
    else {
      this.ready.push(entry);
      this.pump();
    }
  }

  private park(entry: Entry): void {
    this.parked.push(entry);
    if (entry.at < this.parkTimerAt) this.armParkTimer(entry.at);
  }

  private armParkTimer(at: number): void {
    clearTimeout(this.parkTimer);
    this.parkTimerAt = at;
    this.parkTimer = setTimeout(() => this.wake(), Math.min(Math.max(0, at - this.now()), 2 ** 31 - 1));
  }

  /** Moves every parked record that is due to the ready queue. */
  private wake(): void {
    this.parkTimerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    const waiting: Entry[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.parked) {
      if (entry.at <= now) this.ready.push(entry);
      else {
        waiting.push(entry);
        next = Math.min(next, entry.at);
      }
    }
    this.parked = waiting;
    if (next !== Number.POSITIVE_INFINITY) this.armParkTimer(next);
    this.pump();
  }

  private mayStart(): boolean {
    if (this.holding || this.running >= this.options.maxInFlight) return false;
    const y = this.options.yieldTo;
    if (y === undefined || this.running < y.share || !y.busy()) return true;
    // Yielding: look again shortly, since the other consumer's state changes without telling us.
    if (this.yieldTimer === undefined && !this.consumerStopping.signal.aborted) {
      this.yieldTimer = setTimeout(() => {
        this.yieldTimer = undefined;
        this.pump();
      }, YIELD_RECHECK_MS);
    }
    return false;
  }

  /**
   * Never re-entered: a record's work runs synchronously up to its first pending wait, and a wait
   * that lends its slot asks for a pump. Nested, each lending record would start the next inside
   * its own stack frame, and a backlog of records all queueing for one full host overflowed the
   * stack ("Maximum call stack size exceeded", dead-lettered as internal_error with 0 attempts).
   * The running loop sees the lent slot on its next turn instead.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const until = this.now() + PUMP_SLICE_MS;
      let started = 0;
      while (this.readyHead < this.ready.length && this.mayStart()) {
        // Records that wait (for a host, a limit) lend their slots, so one turn could start every
        // buffered record: a slice of time at most, and the loop's I/O (answers, fetches) runs
        // before the next.
        if (++started % 32 === 0 && this.now() >= until) {
          this.pumpLater();
          break;
        }
        const entry = this.ready[this.readyHead++] as Entry;
        if (entry.partition.leaving) continue;
        this.start(entry, entry.run, true);
      }
    } finally {
      this.pumping = false;
    }
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready.splice(0, this.readyHead);
      this.readyHead = 0;
    }
  }

  private pumpLater(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** `slot`: counts against max-in-flight (hand-overs at a let-go don't). */
  private start(entry: Entry, work: Work, slot: boolean, handingOver = false): void {
    const state = entry.partition;
    if (slot) this.running += 1;
    state.running += 1;
    void work(slot ? this.lending(state.signals) : state.signals)
      .catch((error: unknown): RecordEnd => {
        // The pipeline never rejects; if it ever does, the record stays open rather than lost.
        this.options.logger.error(
          { topic: state.topic, partition: state.partition, offset: entry.offset, err: (error as Error)?.message },
          "record work rejected; left uncommitted",
        );
        return { kind: "abandoned" };
      })
      .then((end) => {
        if (slot) this.running -= 1;
        state.running -= 1;
        this.finish(entry, handingOver && end.kind === "later" ? { kind: "abandoned" } : end);
        state.settled();
        this.pump();
      });
  }

  /** The record's signals plus `lend`: while any of its waits is pending, its slot is free. */
  private lending(signals: RecordSignals): RecordSignals {
    let lent = 0;
    const lend = <T>(wait: Promise<T>): Promise<T> => {
      if (lent++ === 0) {
        this.running -= 1;
        this.pump();
      }
      // Taken back even past max-in-flight: the record was already running.
      const back = () => {
        if (--lent === 0) this.running += 1;
      };
      return wait.then(
        (value) => (back(), value),
        (error: unknown) => {
          back();
          throw error;
        },
      );
    };
    return { ...signals, lend };
  }

  private finish(entry: Entry, end: RecordEnd): void {
    const state = entry.partition;
    if (end.kind === "later") {
      entry.run = end.resume;
      entry.handOver = end.handOver;
      entry.at = end.at;
      // A partition being let go hands it over at once instead.
      if (state.leaving) this.start(entry, entry.handOver, false, true);
      else this.park(entry);
      return;
    }
    if (end.kind === "done") state.progress.complete(entry.offset);
    state.buffered -= 1;
    // A partition let go had its lanes dropped; the same lane may already belong to its next life.
    if (!state.leaving) this.advanceLane(entry);
    this.maybeResume(state);
  }

  private advanceLane(entry: Entry): void {
    if (entry.lane === undefined) return;
    const queue = this.lanes.get(entry.lane);
    const next = queue?.shift();
    if (next) this.schedule(next);
    else this.lanes.delete(entry.lane);
  }

  private maybeResume(state: PartitionState): void {
    if (state.paused && !state.leaving && state.buffered <= this.capOf(state) / 2) {
      state.paused = false;
      this.options.onPause(state.topic, state.partition, false);
    }
  }

  /** Drops a partition's records that have not started: the next owner reads them again. */
  private dropQueued(state: PartitionState): void {
    // Lane keys start with the partition's key, so a partition's lanes are its own.
    const prefix = `${tpKey(state.topic, state.partition)}\u0000`;
    for (const lane of [...this.lanes.keys()]) if (lane.startsWith(prefix)) this.lanes.delete(lane);
    if (state.held) state.held = [];
  }
}
