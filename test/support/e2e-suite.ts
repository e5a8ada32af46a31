// What every end-to-end file needs around its tests, written once: Kafka clients on the test broker,
// the built CLI, and clean-up after each test (sidecar processes, and whatever a test tracks).
import type { Admin, Kafka, Producer } from "kafkajs";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import { ensureBuilt } from "./cli.js";
import { SidecarProcess } from "./sidecar-process.js";
import { testKafka, testProducer } from "./traffic.js";

export interface E2eSuite {
  brokers: string[];
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  /** Closes `resource` after the current test. */
  track<T extends { close(): Promise<void> }>(resource: T): T;
}

/** Registers the file's hooks; the clients are there from beforeAll on. */
export function e2eSuite(clientId?: string): E2eSuite {
  const brokers = inject("kafkaBrokers");
  const closers: (() => Promise<void>)[] = [];
  const suite = {
    brokers,
    track<T extends { close(): Promise<void> }>(resource: T): T {
      closers.push(() => resource.close());
      return resource;
    },
  } as E2eSuite;
  beforeAll(async () => {
    if (!brokers) throw new Error("no kafkaBrokers provided: is test/support/kafka-global-setup.ts registered?");
    ensureBuilt();
    suite.kafka = testKafka(brokers, clientId);
    suite.admin = suite.kafka.admin();
    suite.producer = testProducer(suite.kafka);
    await suite.admin.connect();
    await suite.producer.connect();
  });
  afterEach(async () => {
    await SidecarProcess.killAll();
    await Promise.allSettled(closers.splice(0).map((close) => close()));
  });
  afterAll(async () => {
    await SidecarProcess.killAll();
    await suite.producer?.disconnect();
    await suite.admin?.disconnect();
  });
  return suite;
}
