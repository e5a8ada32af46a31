import type { Admin } from "kafkajs";

/**
 * Records in the retry topics (the retry topic and its delay tiers) that the retry consumer group
 * has not committed yet: retries waiting to be due plus those being tried. Read from Kafka, so it
 * is right whichever replica holds them.
 */
export async function retryBacklog(admin: Admin, topics: readonly string[], groupId: string): Promise<number> {
  const counts = await Promise.all(topics.map((topic) => topicBacklog(admin, topic, groupId)));
  return counts.reduce((a, b) => a + b, 0);
}

async function topicBacklog(admin: Admin, topic: string, groupId: string): Promise<number> {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const committedByPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  let backlog = 0n;
  for (const p of ends) {
    const done = committedByPartition.get(p.partition) ?? -1n;
    // -1: nothing committed yet, so everything from the log start is backlog.
    const from = done < 0n ? BigInt(p.low) : done;
    if (BigInt(p.high) > from) backlog += BigInt(p.high) - from;
  }
  return Number(backlog);
}
