import { Partitioners, type Kafka, type Producer } from "kafkajs";
import type { Logger } from "pino";
import { abortableSleep } from "../delivery/dispatcher.js";
import type { OutboundRecord } from "./handoff-records.js";

/**
 * Writes retry and dead-letter records, acknowledged by all in-sync replicas. A write that Kafka
 * refuses is retried until it succeeds or the process must stop: the record that caused it is not
 * done until then, so its offset does not advance and nothing is lost.
 */
export class DurablePublisher {
  private readonly producer: Producer;

  constructor(
    kafka: Kafka,
    private readonly logger: Logger,
  ) {
    this.producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 5 }, createPartitioner: Partitioners.DefaultPartitioner });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  /** Resolves once Kafka acknowledged; rejects only when `signal` aborts first. */
  async publish(topic: string, record: OutboundRecord, signal?: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.send({ topic, acks: -1, messages: [record] });
        return;
      } catch (error) {
        this.logger.error({ topic, attempt, err: (error as Error).message }, "write to Kafka refused; will retry");
        await abortableSleep(Math.min(500 * 2 ** (attempt - 1), 10_000), signal);
      }
    }
  }
}
