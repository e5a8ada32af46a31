// ConsumerRunner against a fake kafkajs consumer behind its one seam, `options.kafka`: the fake
// Kafka's consumer() hands back a consumer that captures the eachBatch handler and the group event
// listeners, and records pause/resume/seek/commitOffsets; its admin() reads the offsets (and their
// metadata) the group's members committed, and which members the group has. The test plays kafkajs: it emits REBALANCING and GROUP_JOIN, and hands
// batches to eachBatch. Every wait (the commit cadence, the hand-over grace) runs on fake timers.
import {
  Kafka,
  logLevel,
  type ConsumerConfig,
  type ConsumerRunConfig,
  type ConsumerSubscribeTopics,
  type EachBatchPayload,
  type TopicPartitionOffsetAndMetadata,
} from "kafkajs";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConsumerRunner, RELEASED, type ConsumerRunnerOptions } from "../../src/kafka/consumer-runner.js";
import type { InboundRecord, RecordEnd, RecordProcessor, RecordSignals } from "../../src/kafka/record-processor.js";

const COMMIT_MS = 200;
const GRACE_MS = 2_000;
/** A member letting a partition go commits its last offset within this part of the grace. */
const LET_GO_MS = GRACE_MS * 0.75;
/** How often a member waiting for a previous owner's release reads the committed offsets. */
const POLL_MS = 100;
const done: RecordEnd = { kind: "done" };

// kafkajs' own event names; building a consumer object opens no connection.
const EVENTS = new Kafka({ brokers: ["127.0.0.1:1"], logLevel: logLevel.NOTHING }).consumer({ groupId: "event-names" }).events;

type Offset = { topic: string; partition: number; offset: string; metadata?: string };

/** The broker's side of the consumer group: the offsets its members committed, and its members. */
class FakeGroup {
  readonly committed = new Map<string, { offset: string; metadata: string | null }>();
  /** Member ids as describeGroups reports them; every fake consumer joins as "member". */
  members: string[] = ["member", "another"];
  failFetchOffsets = false;
  /** How many consumer.run() calls fail (as when the broker does not host a new topic yet). */
  failRuns = 0;

  constructor(readonly partitions: Record<string, number>) {}

  commit(topic: string, partition: number, offset: string, metadata: string | null = null): void {
    this.committed.set(`${topic}/${partition}`, { offset, metadata });
  }

  offsetOf(topic: string, partition: number): string | undefined {
    return this.committed.get(`${topic}/${partition}`)?.offset;
  }
}

class FakeAdmin {
  readonly fetched: { groupId: string; topics: string[] | undefined }[] = [];
  connected = false;

  constructor(private readonly group: FakeGroup) {}

  connect = async () => void (this.connected = true);
  disconnect = async () => void (this.connected = false);

  fetchOffsets = async ({ groupId, topics }: { groupId: string; topics?: string[] }) => {
    this.fetched.push({ groupId, topics });
    await Promise.resolve();
    if (this.group.failFetchOffsets) throw new Error("coordinator not available");
    return (topics ?? []).map((topic) => ({
      topic,
      partitions: Array.from({ length: this.group.partitions[topic] ?? 0 }, (_, partition) => ({
        partition,
        offset: this.group.offsetOf(topic, partition) ?? "-1",
        metadata: this.group.committed.get(`${topic}/${partition}`)?.metadata ?? null,
      })),
    }));
  };

  describeGroups = async (groupIds: string[]) => {
    await Promise.resolve();
    return { groups: groupIds.map((groupId) => ({ groupId, members: this.group.members.map((memberId) => ({ memberId })) })) };
  };
}

class FakeConsumer {
  readonly events = EVENTS;
  readonly pauses: { topic: string; partitions: number[] }[][] = [];
  readonly resumes: { topic: string; partitions: number[] }[][] = [];
  readonly seeks: Offset[] = [];
  readonly commits: Offset[][] = [];
  /** kafkajs' fetch position, moved by resolveOffset. */
  readonly resolved: string[] = [];
  subscribed: ConsumerSubscribeTopics | undefined;
  runConfig: ConsumerRunConfig | undefined;
  runCalls = 0;
  connected = false;
  /** kafkajs' own flag: set by run(), even one that fails, and cleared only by stop(). */
  running = false;
  failCommits = 0;
  private readonly listeners = new Map<string, ((event: unknown) => void)[]>();

  constructor(
    readonly config: ConsumerConfig,
    private readonly group: FakeGroup,
  ) {}

  connect = async () => void (this.connected = true);
  disconnect = async () => void (this.connected = false);
  subscribe = async (subscription: ConsumerSubscribeTopics) => {
    if (this.running) throw new Error("Cannot subscribe to topic while consumer is running");
    this.subscribed = subscription;
  };
  run = async (config: ConsumerRunConfig) => {
    this.runCalls += 1;
    this.running = true;
    if (this.group.failRuns > 0) {
      this.group.failRuns -= 1;
      throw new Error("This server does not host this topic-partition");
    }
    this.runConfig = config;
  };
  stop = async () => void (this.running = false);
  pause = (topics: { topic: string; partitions: number[] }[]) => void this.pauses.push(topics);
  resume = (topics: { topic: string; partitions: number[] }[]) => void this.resumes.push(topics);
  seek = (offset: Offset) => void this.seeks.push(offset);

  commitOffsets = async (offsets: TopicPartitionOffsetAndMetadata[]) => {
    await Promise.resolve();
    if (this.failCommits > 0) {
      this.failCommits -= 1;
      throw new Error("The coordinator is loading");
    }
    this.commits.push(
      offsets.map(({ topic, partition, offset, metadata }) => ({ topic, partition, offset, ...(metadata ? { metadata } : {}) })),
    );
    for (const { topic, partition, offset, metadata } of offsets) this.group.commit(topic, partition, offset, metadata ?? null);
  };

  on = (event: string, listener: (event: unknown) => void) => {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return () => undefined;
  };

  emit(event: string, payload: unknown = {}): void {
    for (const listener of this.listeners.get(event) ?? []) listener({ id: 0, type: event, timestamp: Date.now(), payload });
  }

  /** This member's part of a new generation, as kafkajs announces it. */
  join(assignment: Record<string, number[]>): void {
    this.emit(EVENTS.GROUP_JOIN, {
      duration: 5,
      groupId: this.config.groupId,
      isLeader: false,
      leaderId: "leader",
      groupProtocol: "RoundRobinAssigner",
      memberId: "member",
      memberAssignment: assignment,
    });
  }

  /** A rebalance: kafkajs says it is rejoining, then which partitions this member has now. */
  rebalance(assignment: Record<string, number[]>): void {
    this.emit(EVENTS.REBALANCING, { groupId: this.config.groupId, memberId: "member" });
    this.join(assignment);
  }

  /** A fetched batch handed to the runner's eachBatch, as kafkajs does. */
  async deliver(topic: string, partition: number, offsets: number[], { stale = false } = {}): Promise<void> {
    const eachBatch = this.runConfig?.eachBatch;
    if (!eachBatch) throw new Error("the runner has not called run() with eachBatch");
    const messages = offsets.map((offset) => ({
      offset: String(offset),
      key: Buffer.from(`key-${offset}`),
      value: Buffer.from(`value-${offset}`),
      headers: { "callback-delivery-id": `d-${offset}` },
      timestamp: "1700000000000",
      attributes: 0,
    }));
    const payload = {
      batch: { topic, partition, highWatermark: String((offsets.at(-1) ?? 0) + 1), messages },
      resolveOffset: (offset: string) => void this.resolved.push(`${topic}/${partition}@${offset}`),
      heartbeat: async () => undefined,
      pause: () => () => undefined,
      commitOffsetsIfNecessary: async () => undefined,
      uncommittedOffsets: () => ({ topics: [] }),
      isRunning: () => true,
      isStale: () => stale,
    };
    await eachBatch(payload as unknown as EachBatchPayload);
  }
}

interface Run {
  record: InboundRecord;
  signals: RecordSignals;
  end(end?: RecordEnd): void;
}

/** The pipeline's stand-in: each record's work runs until the test ends it. */
class FakeProcessor implements RecordProcessor {
  readonly runs: Run[] = [];
  readonly handedOver: InboundRecord[] = [];
  /** Records (by "partition@offset") that are not due before this epoch ms. */
  readonly due = new Map<string, number>();
  /** Ends every record as done as soon as it starts. */
  autoDone = false;

  startAt(record: InboundRecord): number {
    return this.due.get(`${record.partition}@${record.offset}`) ?? 0;
  }

  process(record: InboundRecord, signals: RecordSignals): Promise<RecordEnd> {
    return new Promise((resolve) => {
      const run: Run = { record, signals, end: (end = done) => resolve(end) };
      this.runs.push(run);
      if (this.autoDone) run.end();
    });
  }

  async handOver(record: InboundRecord): Promise<RecordEnd> {
    this.handedOver.push(record);
    return done;
  }

  /** "partition@offset" of every record started, in order. */
  started(): string[] {
    return this.runs.map(({ record }) => `${record.partition}@${record.offset}`);
  }

  run(partition: number, offset: number): Run {
    const found = this.runs.find(({ record }) => record.partition === partition && record.offset === String(offset));
    if (!found) throw new Error(`record ${partition}@${offset} never started`);
    return found;
  }

  /** Ends the records as done, one after another, so that a lane's next record can start. */
  async finish(partition: number, ...offsets: number[]): Promise<void> {
    for (const offset of offsets) {
      this.run(partition, offset).end();
      await vi.advanceTimersByTimeAsync(0);
    }
  }
}

type Logged = Record<string, unknown> & { msg: string; level: number };

async function member(group: FakeGroup, options: Partial<ConsumerRunnerOptions> = {}, { start = true } = {}) {
  const logs: Logged[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line) as Logged) });
  const processor = new FakeProcessor();
  const consumers: FakeConsumer[] = [];
  const admins: FakeAdmin[] = [];
  const kafka = {
    consumer: (config: ConsumerConfig) => {
      consumers.push(new FakeConsumer(config, group));
      return consumers.at(-1);
    },
    admin: () => {
      admins.push(new FakeAdmin(group));
      return admins.at(-1);
    },
  } as unknown as Kafka;
  const runner = new ConsumerRunner({
    name: "events",
    kafka,
    groupId: "callbacks",
    topics: ["t"],
    fromBeginning: true,
    maxInFlight: 16,
    ordering: "none",
    sessionTimeoutMs: 30_000,
    processor,
    logger,
    commitIntervalMs: COMMIT_MS,
    handoverGraceMs: GRACE_MS,
    ...options,
  });
  expect(consumers).toHaveLength(1);
  expect(admins).toHaveLength(1);
  if (start) await runner.start();
  const consumer = consumers[0]!;
  return { runner, consumer, admin: admins[0]!, processor, logs, logged: (msg: string) => logs.filter((l) => l.msg === msg) };
}

/** A member that joined with `assignment` and whose grace is over: its partitions are worked. */
async function joined(group: FakeGroup, assignment: Record<string, number[]>, options: Partial<ConsumerRunnerOptions> = {}) {
  const m = await member(group, options);
  m.consumer.join(assignment);
  await vi.advanceTimersByTimeAsync(GRACE_MS);
  expect(m.runner.isReady()).toBe(true);
  return m;
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const commitOf = (partition: number, offset: number): Offset => ({ topic: "t", partition, offset: String(offset) });
/** A member's last commit for a partition it lets go: the next owner need not wait out the grace. */
const releaseOf = (partition: number, offset: number): Offset => ({ ...commitOf(partition, offset), metadata: RELEASED });

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("ConsumerRunner: joining the group", () => {
  it("subscribes, takes batches without kafkajs' auto-commit, and logs the assignment it joined with", async () => {
    const { consumer, admin, runner, logged } = await member(new FakeGroup({ t: 2 }));
    expect(admin.connected).toBe(true);
    expect(consumer.connected).toBe(true);
    expect(consumer.config).toMatchObject({ groupId: "callbacks", sessionTimeout: 30_000 });
    expect(consumer.subscribed).toEqual({ topics: ["t"], fromBeginning: true });
    expect(consumer.runConfig).toMatchObject({ autoCommit: false, eachBatchAutoResolve: false });
    expect(runner.isReady()).toBe(false); // not in the group yet

    consumer.join({ t: [0, 1] });
    expect(logged("joined consumer group")).toEqual([expect.objectContaining({ consumer: "events", assignment: { t: [0, 1] } })]);
  });

  it("started again after its consumer failed to start, starts it afresh; once running, starting changes nothing", async () => {
    const group = new FakeGroup({ t: 1 });
    group.failRuns = 1;
    const { runner, consumer } = await member(group, {}, { start: false });
    await expect(runner.start()).rejects.toThrow("does not host");
    await runner.start();
    expect(consumer.runCalls).toBe(2);
    expect(consumer.subscribed).toEqual({ topics: ["t"], fromBeginning: true });
    // As when another consumer's start fails after this one's succeeded: the sidecar tries both again.
    await runner.start();
    expect(consumer.runCalls).toBe(2);
    consumer.join({ t: [0] });
    await consumer.deliver("t", 0, [0]);
    await advance(GRACE_MS);
    expect(runner.isReady()).toBe(true);
  });

  it("holds the records of partitions nobody released for the grace, then runs those the group has not committed", async () => {
    const group = new FakeGroup({ t: 2 });
    group.commit("t", 0, "2"); // a previous owner finished 0 and 1, and has not released the partition
    const { consumer, admin, runner, processor } = await member(group);
    consumer.join({ t: [0, 1] });
    // kafkajs fetches from the committed offset, or from where the last owner's commit stood.
    await consumer.deliver("t", 0, [1, 2, 3]);
    await consumer.deliver("t", 1, [0]);
    expect(consumer.resolved).toEqual(["t/0@1", "t/0@2", "t/0@3", "t/1@0"]);

    await advance(GRACE_MS - 1);
    expect(processor.runs).toEqual([]);
    expect(runner.isReady()).toBe(false);
    // Read on the poll, waiting for a release that does not come.
    expect(admin.fetched).toHaveLength(GRACE_MS / POLL_MS);
    expect(new Set(admin.fetched.map((f) => JSON.stringify(f)))).toEqual(
      new Set([JSON.stringify({ groupId: "callbacks", topics: ["t"] })]),
    );

    await advance(1);
    expect(processor.started()).toEqual(["0@2", "0@3", "1@0"]);
    expect(processor.run(0, 2).record).toEqual({
      topic: "t",
      partition: 0,
      offset: "2",
      key: Buffer.from("key-2"),
      value: Buffer.from("value-2"),
      headers: { "callback-delivery-id": "d-2" },
      timestamp: "1700000000000",
    });
    expect(runner.isReady()).toBe(true);
    expect(runner.inFlight).toBe(3);
  });

  it("commits on its cadence only the offsets below which every record is done", async () => {
    const { consumer, processor } = await joined(new FakeGroup({ t: 2 }), { t: [0, 1] });
    await consumer.deliver("t", 0, [0, 1, 2, 3]);
    await consumer.deliver("t", 1, [0, 1]);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "0@3", "1@0", "1@1"]);

    await processor.finish(0, 0, 1, 3); // 2 still runs
    await processor.finish(1, 1); // 0 still runs
    await advance(COMMIT_MS - 1);
    expect(consumer.commits).toEqual([]);
    await advance(1);
    // Partition 1's first record still runs: its offset stays where it started.
    expect(consumer.commits).toEqual([[commitOf(0, 2), commitOf(1, 0)]]);

    await processor.finish(0, 2);
    await processor.finish(1, 0);
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([
      [commitOf(0, 2), commitOf(1, 0)],
      [commitOf(0, 4), commitOf(1, 2)],
    ]);
    // Nothing moved: nothing to commit.
    await advance(COMMIT_MS * 10);
    expect(consumer.commits).toHaveLength(2);
  });

  it("a commit that fails is made again on the next tick", async () => {
    const { consumer, processor, logged } = await joined(new FakeGroup({ t: 1 }), { t: [0] });
    await consumer.deliver("t", 0, [0]);
    await processor.finish(0, 0);
    consumer.failCommits = 1;
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([]);
    expect(logged("offset commit failed; will retry")).toHaveLength(1);
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([[commitOf(0, 1)]]);
  });

  it("does not take records from a batch kafkajs says is stale", async () => {
    const { consumer, processor } = await joined(new FakeGroup({ t: 1 }), { t: [0] });
    await consumer.deliver("t", 0, [0, 1], { stale: true });
    expect(processor.runs).toEqual([]);
    expect(consumer.resolved).toEqual([]);
  });

  it("pauses fetching a partition whose buffered records reach the cap, and resumes it at half", async () => {
    const pausedChanges: boolean[] = [];
    const { consumer, processor } = await joined(
      new FakeGroup({ t: 2 }),
      { t: [0, 1] },
      { maxBufferedPerPartition: 4, onPausedChange: (paused) => pausedChanges.push(paused) },
    );
    await consumer.deliver("t", 0, [0, 1, 2, 3]);
    expect(consumer.pauses).toEqual([[{ topic: "t", partitions: [0] }]]);
    expect(pausedChanges).toEqual([true]);
    await processor.finish(0, 0);
    expect(consumer.resumes).toEqual([]);
    await processor.finish(0, 1);
    expect(consumer.resumes).toEqual([[{ topic: "t", partitions: [0] }]]);
    expect(pausedChanges).toEqual([true, false]);
  });

  it("shares the buffered-record budget among its partitions, at least 64 each", async () => {
    const { consumer } = await joined(new FakeGroup({ t: 3 }), { t: [0, 1] }, { maxInFlight: 16, maxBuffered: 400 });
    const offsets = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    await consumer.deliver("t", 0, offsets(0, 199));
    expect(consumer.pauses).toEqual([]);
    await consumer.deliver("t", 0, [199]); // 400 over two partitions: 200 each
    expect(consumer.pauses).toEqual([[{ topic: "t", partitions: [0] }]]);
    // A third partition (rebalanced in) shrinks every share to 134.
    consumer.rebalance({ t: [0, 1, 2] });
    await advance(GRACE_MS);
    await consumer.deliver("t", 1, offsets(0, 133));
    expect(consumer.pauses).toHaveLength(1);
    await consumer.deliver("t", 1, [133]);
    expect(consumer.pauses.at(-1)).toEqual([{ topic: "t", partitions: [1] }]);

    // Without maxBuffered: twice maxInFlight, but never under 64 a partition.
    const small = await joined(new FakeGroup({ t: 2 }), { t: [0, 1] }, { maxInFlight: 16 });
    await small.consumer.deliver("t", 0, offsets(0, 63));
    expect(small.consumer.pauses).toEqual([]);
    await small.consumer.deliver("t", 0, [63]);
    expect(small.consumer.pauses).toEqual([[{ topic: "t", partitions: [0] }]]);
  });

  it("is ready while the broker is heard from within the session timeout", async () => {
    const { consumer, runner } = await joined(new FakeGroup({ t: 1 }), { t: [0] });
    await advance(30_000 - GRACE_MS - 1);
    expect(runner.isReady()).toBe(true);
    await advance(1);
    expect(runner.isReady()).toBe(false);
    consumer.emit(EVENTS.HEARTBEAT);
    expect(runner.isReady()).toBe(true);
    consumer.emit(EVENTS.CRASH, { error: new Error("broker gone"), groupId: "callbacks", restart: true });
    expect(runner.isReady()).toBe(false);
  });
});

describe("ConsumerRunner: a partition revoked", () => {
  it("commits what is done as the rebalance starts, and starts nothing until the new assignment is known", async () => {
    const { consumer, processor } = await joined(new FakeGroup({ t: 2 }), { t: [0, 1] });
    await consumer.deliver("t", 0, [0, 1]);
    await processor.finish(0, 0);
    consumer.emit(EVENTS.REBALANCING, { groupId: "callbacks", memberId: "member" });
    await advance(0);
    expect(consumer.commits).toEqual([[commitOf(0, 1)]]); // at once, not on the next tick
    await consumer.deliver("t", 1, [0]);
    expect(processor.started()).toEqual(["0@0", "0@1"]);
    consumer.join({ t: [0, 1] });
    await advance(0);
    expect(processor.started()).toEqual(["0@0", "0@1", "1@0"]);
  });

  it("hands over its records that wait, tells running ones to hand over, and commits its last offset once they are done", async () => {
    const { consumer, processor } = await joined(new FakeGroup({ t: 2 }), { t: [0, 1] });
    processor.due.set("0@3", Date.now() + 60_000); // a retry not due yet
    await consumer.deliver("t", 0, [0, 1, 2, 3]);
    await consumer.deliver("t", 1, [0]);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "1@0"]);
    await processor.finish(0, 0);
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([[commitOf(0, 1), commitOf(1, 0)]]);

    consumer.rebalance({ t: [1] });
    await advance(0);
    expect(processor.run(0, 1).signals.stopping.aborted).toBe(true);
    expect(processor.run(0, 2).signals.stopping.aborted).toBe(true);
    expect(processor.run(1, 0).signals.stopping.aborted).toBe(false); // still ours
    expect(processor.handedOver.map((r) => `${r.partition}@${r.offset}`)).toEqual(["0@3"]);
    // kafkajs may still hand over a batch of the partition being let go: not taken.
    await consumer.deliver("t", 0, [4]);
    await processor.finish(0, 1); // handed over durably
    await advance(100);
    expect(consumer.commits).toHaveLength(1); // 2 still runs
    await processor.finish(0, 2);
    expect(consumer.commits).toEqual([[commitOf(0, 1), commitOf(1, 0)], [releaseOf(0, 4)]]);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "1@0"]);
    // The partition kept goes on as before.
    await consumer.deliver("t", 1, [1]);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "1@0", "1@1"]);
  });

  it("commits nothing past a record still unfinished when its part of the grace is over", async () => {
    const { consumer, processor, logged } = await joined(new FakeGroup({ t: 1 }), { t: [0] });
    await consumer.deliver("t", 0, [0, 1, 2]);
    await processor.finish(0, 0, 2); // 1 ignores being told to stop
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([[commitOf(0, 1)]]);

    consumer.rebalance({});
    await advance(LET_GO_MS - 1);
    expect(processor.run(0, 1).signals.deadline.aborted).toBe(false);
    await advance(1);
    expect(processor.run(0, 1).signals.deadline.aborted).toBe(true);
    expect(logged("grace over; unfinished records stay uncommitted for the next owner")).toEqual([
      expect.objectContaining({ topic: "t", partition: 0, running: 1 }),
    ]);
    // Its last commit releases the partition at the offset of the unfinished record.
    expect(consumer.commits).toEqual([[commitOf(0, 1)], [releaseOf(0, 1)]]);
    // Ending after its partition was let go, it moves no offset.
    await processor.finish(0, 1);
    await advance(COMMIT_MS * 5);
    expect(consumer.commits).toEqual([[commitOf(0, 1)], [releaseOf(0, 1)]]);
  });
});

describe("ConsumerRunner: a partition assigned again", () => {
  it("kept across a rebalance, it skips what kafkajs fetches again from the committed offset", async () => {
    const { consumer, processor, admin } = await joined(new FakeGroup({ t: 1 }), { t: [0] });
    await consumer.deliver("t", 0, [0, 1, 2, 3]);
    await processor.finish(0, 0, 1);
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([[commitOf(0, 2)]]);
    const reads = admin.fetched.length;

    consumer.rebalance({ t: [0] });
    await advance(0);
    expect(admin.fetched).toHaveLength(reads); // a kept partition is not held again
    // kafkajs rejoins and fetches from the committed offset: 2 and 3 run here already.
    await consumer.deliver("t", 0, [2, 3, 4, 5]);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "0@3", "0@4", "0@5"]);
    await processor.finish(0, 2, 3, 4, 5);
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([[commitOf(0, 2)], [commitOf(0, 6)]]);
  });

  it("back while still being let go, it starts again from its committed offset: nothing it finished runs twice", async () => {
    const { consumer, processor, runner } = await joined(new FakeGroup({ t: 1 }), { t: [0] }, { ordering: "partition" });
    await consumer.deliver("t", 0, [0, 1, 2, 3, 4, 5]);
    await processor.finish(0, 0, 1, 2); // one after another, in partition order
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "0@3"]);
    await advance(COMMIT_MS);
    expect(consumer.commits).toEqual([[commitOf(0, 3)]]);

    consumer.rebalance({}); // 3 is told to hand over; 4 and 5, not started, are left to the next owner
    await advance(100);
    consumer.rebalance({ t: [0] }); // back before 3 is over
    await consumer.deliver("t", 0, [6, 7]); // kafkajs' old fetch position: refused while letting go
    await advance(400);
    await processor.finish(0, 3);
    await advance(0);
    // Started again like a gained partition, at once because the last commit is its own release,
    // and read again from the committed offset: kafkajs' position is past what it refused.
    expect(consumer.commits.slice(0, 2)).toEqual([[commitOf(0, 3)], [releaseOf(0, 4)]]);
    expect(consumer.seeks).toEqual([commitOf(0, 4)]);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "0@3"]);
    expect(runner.isReady()).toBe(true);
    // Working it again, it clears the release mark.
    expect(consumer.commits[2]).toEqual([commitOf(0, 4)]);
    processor.autoDone = true;
    await consumer.deliver("t", 0, [4, 5, 6, 7, 8, 9]);
    await advance(0);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "0@3", "0@4", "0@5", "0@6", "0@7", "0@8", "0@9"]);
    await advance(COMMIT_MS);
    expect(consumer.commits.at(-1)).toEqual([commitOf(0, 10)]);
  });
});

describe("ConsumerRunner: a last commit that fails", () => {
  it("is made again until it lands, so the next owner does not run what this member finished", async () => {
    const group = new FakeGroup({ t: 1 });
    const { consumer, processor, logged } = await joined(group, { t: [0] });
    await consumer.deliver("t", 0, [0, 1]);
    await processor.finish(0, 0, 1);
    consumer.failCommits = 4; // the rebalance's commit, then the let-go's first three tries
    consumer.rebalance({});
    await advance(POLL_MS * 2.5);
    expect(group.offsetOf("t", 0)).toBeUndefined();
    await advance(POLL_MS);
    expect(group.committed.get("t/0")).toEqual({ offset: "2", metadata: RELEASED });
    expect(logged("offset commit failed; will retry")).toHaveLength(4);
  });

  it("lost for good, the partition back here still skips what this member finished, and the group's offset is set right", async () => {
    const group = new FakeGroup({ t: 1 });
    const { consumer, processor } = await joined(group, { t: [0] });
    consumer.failCommits = 1_000;
    await consumer.deliver("t", 0, [0, 1, 2]);
    await processor.finish(0, 0, 1, 2);
    consumer.rebalance({});
    await advance(GRACE_MS + POLL_MS); // the let-go gives up
    expect(group.offsetOf("t", 0)).toBeUndefined();
    consumer.failCommits = 0;

    consumer.rebalance({ t: [0] });
    // kafkajs reads from the group's offset: none, so from the start.
    await consumer.deliver("t", 0, [0, 1, 2, 3]);
    await advance(GRACE_MS);
    expect(processor.started()).toEqual(["0@0", "0@1", "0@2", "0@3"]);
    expect(group.offsetOf("t", 0)).toBe("3");
  });
});

describe("ConsumerRunner: a partition taken over from another member", () => {
  it("starts as soon as the previous owner's last commit releases it, and runs only what that owner did not finish", async () => {
    const group = new FakeGroup({ t: 1 });
    const a = await joined(group, { t: [0] });
    await a.consumer.deliver("t", 0, [0, 1, 2, 3, 4]);
    await a.processor.finish(0, 0, 1);
    await advance(COMMIT_MS);
    expect(group.offsetOf("t", 0)).toBe("2");
    // 2 and 3 hand over when told to stop; 4 does not end in time.
    for (const [offset, ms] of [
      [2, 100],
      [3, 300],
    ] as const) {
      const run = a.processor.run(0, offset);
      run.signals.stopping.addEventListener("abort", () => setTimeout(() => run.end(), ms), { once: true });
    }

    const b = await member(group);
    a.consumer.rebalance({});
    b.consumer.join({ t: [0] });
    // b's kafkajs fetches from the offset committed so far.
    await b.consumer.deliver("t", 0, [2, 3, 4]);
    await advance(LET_GO_MS - 1);
    expect(b.processor.runs).toEqual([]);
    expect(b.runner.isReady()).toBe(false);
    await advance(1);
    expect(a.consumer.commits.at(-1)).toEqual([releaseOf(0, 4)]); // a's last commit, as its part of the grace ends

    // b reads it on its next poll, long before its own grace is over.
    await advance(POLL_MS);
    expect(b.processor.started()).toEqual(["0@4"]);
    expect(b.runner.isReady()).toBe(true);
    expect(b.consumer.seeks).toEqual([]);
    expect(b.logged("skipped records the previous owner finished")).toEqual([expect.objectContaining({ partition: 0, dropped: 2 })]);
    // b clears the mark at once: a later owner must wait for b's own hand-over.
    expect(group.committed.get("t/0")).toEqual({ offset: "4", metadata: null });
    await b.processor.finish(0, 4);
    await advance(COMMIT_MS);
    expect(b.consumer.commits).toEqual([[commitOf(0, 4)], [commitOf(0, 5)]]);
    // a's unfinished record ending late changes nothing.
    await a.processor.finish(0, 4);
    await advance(COMMIT_MS);
    expect(a.consumer.commits.at(-1)).toEqual([releaseOf(0, 4)]);
    expect(group.offsetOf("t", 0)).toBe("5");
  });

  it("alone in its group, starts its partitions at once: nobody else can still be working them", async () => {
    const group = new FakeGroup({ t: 2 });
    group.members = ["member"];
    group.commit("t", 0, "3");
    const b = await member(group);
    b.consumer.join({ t: [0, 1] });
    await b.consumer.deliver("t", 0, [3, 4]);
    await b.consumer.deliver("t", 1, [0]);
    await advance(0);
    expect(b.processor.started()).toEqual(["0@3", "0@4", "1@0"]);
    expect(b.runner.isReady()).toBe(true);
  });

  it("runs every held record after the grace when the previous owner committed nothing more", async () => {
    const group = new FakeGroup({ t: 1 });
    group.commit("t", 0, "7");
    const b = await member(group);
    b.consumer.join({ t: [0] });
    await b.consumer.deliver("t", 0, [7, 8]);
    await advance(GRACE_MS - 1);
    expect(b.processor.runs).toEqual([]);
    await advance(1);
    expect(b.processor.started()).toEqual(["0@7", "0@8"]);
    expect(b.logged("skipped records the previous owner finished")).toEqual([]);
  });

  it("without the committed offsets, runs the held records after the grace (at worst once more)", async () => {
    const group = new FakeGroup({ t: 1 });
    group.failFetchOffsets = true;
    const b = await member(group);
    b.consumer.join({ t: [0] });
    await b.consumer.deliver("t", 0, [3, 4]);
    await advance(GRACE_MS);
    expect(b.logged("could not re-read committed offsets of gained partitions")).toHaveLength(1);
    expect(b.processor.started()).toEqual(["0@3", "0@4"]);
  });
});

describe("ConsumerRunner: stopping", () => {
  it("stops fetching, lets running records finish, commits their offsets as released and leaves", async () => {
    const { consumer, admin, processor, runner } = await joined(new FakeGroup({ t: 2 }), { t: [0, 1] });
    await consumer.deliver("t", 0, [0, 1]);
    await consumer.deliver("t", 1, [0]);
    await processor.finish(0, 0);
    const stopped = runner.stop(Date.now() + 5_000);
    await advance(0);
    expect(consumer.pauses).toEqual([
      [
        { topic: "t", partitions: [0] },
        { topic: "t", partitions: [1] },
      ],
    ]);
    expect(processor.run(0, 1).signals.stopping.aborted).toBe(true);
    expect(runner.isReady()).toBe(false);
    await processor.finish(0, 1);
    await processor.finish(1, 0);
    await stopped;
    // Marked released: a member taking them over need not wait out its grace.
    expect(consumer.commits).toEqual([[releaseOf(0, 2), releaseOf(1, 1)]]);
    expect(consumer.connected).toBe(false);
    expect(admin.connected).toBe(false);
    const commits = consumer.commits.length;
    await advance(COMMIT_MS * 5);
    expect(consumer.commits).toHaveLength(commits); // the commit cadence stopped with it
  });
});
