import { randomUUID } from "node:crypto";
import type { Kafka, KafkaMessage } from "kafkajs";
import { SidecarError } from "../shared/errors.js";

export interface ReadRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

export interface ChunkLimits {
  /** Records kept (selected) per chunk. */
  records: number;
  /** Bytes of kept records (value and headers) per chunk. */
  bytes: number;
}

export interface ChunkedReadOptions<T> {
  /** The throwaway group is `<groupPrefix>.<uuid>`, deleted when the read ends. */
  groupPrefix: string;
  /**
   * Sees every record below the end once, in offset order within a partition; what it returns is
   * kept for the chunk, undefined drops the record. Synchronous on purpose: the consumer's handler
   * must never wait on the caller (see readTopicInChunks).
   */
  select: (record: ReadRecord) => T | undefined;
  limits?: Partial<ChunkLimits>;
  /** No partition moving forward for this long (connecting and joining included) ends the read. */
  stallMs?: number;
}

export const DEFAULT_CHUNK_LIMITS: ChunkLimits = { records: 1_000, bytes: 64 * 1024 * 1024 };
const DEFAULT_STALL_MS = 60_000;

/** The read cannot reach the end it set itself (broker unreachable, or offsets that never arrive). */
export class TopicReadStalledError extends SidecarError {
  constructor(topic: string, partitions: number[], stallMs: number) {
    super("TOPIC_READ_STALLED", `reading ${topic}: partitions ${partitions.join(", ")} made no progress for ${stallMs} ms`);
  }
}

/**
 * Reads a topic from its beginning up to where it ended when the read started, in chunks of
 * selected records, with a throwaway consumer group (deleted afterwards) so it commits nothing
 * anyone else relies on.
 *
 * Each chunk is read by a consumer that is disconnected before the chunk is yielded, so whatever
 * the caller does with a chunk (deliveries that run for minutes) happens while no consumer exists:
 * there is no session to time out and no rebalance that could hand the same records out again.
 * The next chunk's consumer resumes from the offsets the previous one committed in the throwaway
 * group, and the positions kept here drop anything a rebalance or a failed commit fetches twice,
 * so every record reaches `select` exactly once. Chunks bound the memory a large topic needs.
 */
export async function* readTopicInChunks<T>(
  kafka: Kafka,
  topic: string,
  options: ChunkedReadOptions<T>,
): AsyncGenerator<T[], void, undefined> {
  const limits: ChunkLimits = { ...DEFAULT_CHUNK_LIMITS, ...options.limits };
  limits.records = Math.max(1, limits.records);
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${options.groupPrefix}.${randomUUID()}`;
  let groupUsed = false;
  try {
    const ends = new Map<number, bigint>();
    for (const p of await admin.fetchTopicOffsets(topic)) {
      if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high));
    }
    const positions = new Map<number, bigint>();
    const open = new Set(ends.keys());
    while (open.size > 0) {
      groupUsed = true;
      const chunk = await readChunk(kafka, topic, groupId, { ends, positions, open }, options.select, limits, stallMs);
      if (chunk.length > 0) yield chunk;
    }
  } finally {
    if (groupUsed) await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

interface ReadState {
  /** Exclusive end offset per partition, fixed when the read started. */
  ends: Map<number, bigint>;
  /** The offset after the last record handed to `select`, per partition. */
  positions: Map<number, bigint>;
  /** Partitions not read to their end yet. */
  open: Set<number>;
}

async function readChunk<T>(
  kafka: Kafka,
  topic: string,
  groupId: string,
  state: ReadState,
  select: (record: ReadRecord) => T | undefined,
  limits: ChunkLimits,
  stallMs: number,
): Promise<T[]> {
  const { ends, positions, open } = state;
  // disconnect() waits for the fetch in flight, which long-polls for maxWaitTimeInMs once the
  // partitions have nothing new: kafkajs' 5 s default would be added to every chunk.
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250 });
  const items: T[] = [];
  let bytes = 0;
  let full = false;
  let settled = false;
  let stallTimer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(stallTimer);
        if (error === undefined) resolve();
        else reject(error);
      };
      const armStall = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(
          () =>
            settle(
              new TopicReadStalledError(
                topic,
                [...open].sort((a, b) => a - b),
                stallMs,
              ),
            ),
          stallMs,
        );
      };
      armStall();
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) settle(payload.error);
      });
      const run = async () => {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset, pause }) => {
            if (settled) return;
            const partition = batch.partition;
            const end = ends.get(partition);
            if (end === undefined || !open.has(partition)) {
              // Finished, or empty when the read started: what it has now is past our end.
              pause();
              return;
            }
            const before = positions.get(partition);
            let position = before;
            let cut = false;
            for (const message of batch.messages) {
              const offset = BigInt(message.offset);
              if (position !== undefined && offset < position) continue;
              if (offset >= end) break;
              if (full) {
                cut = true;
                break;
              }
              let item: T | undefined;
              try {
                item = select({ topic, partition, message });
              } catch (error) {
                settle(error);
                return;
              }
              position = offset + 1n;
              if (item === undefined) continue;
              items.push(item);
              bytes += recordBytes(message);
              if (items.length >= limits.records || bytes >= limits.bytes) full = true;
            }
            // Trailing control records or aborted transactional records are never delivered as
            // messages; without this, a partition ending in one would never look finished.
            if (!cut) {
              const last = BigInt(batch.lastOffset()) + 1n;
              const reached = last < end ? last : end;
              if (position === undefined || reached > position) position = reached;
            }
            if (position !== undefined) {
              positions.set(partition, position);
              // kafkajs fetches from the last resolved offset; unresolved, it would fetch this batch again.
              resolveOffset((position - 1n).toString());
              if (position >= end) open.delete(partition);
            }
            if (position !== before) armStall();
            if (full || open.size === 0) settle();
          },
        });
      };
      run().catch(settle);
    });
    // Where the next chunk's consumer starts. Should this commit fail, that consumer starts
    // earlier and `positions` drops what it already took, so the cost is reading, not resending.
    const offsets = [...positions].map(([partition, offset]) => ({ topic, partition, offset: offset.toString() }));
    if (offsets.length > 0) await consumer.commitOffsets(offsets).catch(() => undefined);
    return items;
  } finally {
    clearTimeout(stallTimer);
    await consumer.disconnect().catch(() => undefined);
  }
}

function recordBytes(message: KafkaMessage): number {
  let size = (message.value?.length ?? 0) + (message.key?.length ?? 0);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    size += name.length;
    for (const v of Array.isArray(value) ? value : [value]) size += v === undefined ? 0 : Buffer.byteLength(v);
  }
  return size;
}

/**
 * Reads a topic from its beginning up to where it ended when the read started, then stops, and
 * hands every record to `onRecord` (after the consumer has let go of it). Returns how many.
 */
export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  onRecord: (record: ReadRecord) => Promise<void>,
  groupPrefix: string,
): Promise<number> {
  let count = 0;
  for await (const chunk of readTopicInChunks(kafka, topic, { groupPrefix, select: (record) => record })) {
    for (const record of chunk) {
      await onRecord(record);
      count += 1;
    }
  }
  return count;
}
