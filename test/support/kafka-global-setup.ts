// vitest globalSetup: one real broker for the whole run; tests read its address with inject("kafkaBrokers").
import type { TestProject } from "vitest/node";
import { kafkaBrokersFromEnv, startKafka } from "./kafka-broker.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** bootstrap addresses ("host:port"); join(",") for KAFKA_BROKERS */
    kafkaBrokers: string[];
  }
}

// Spare the ~10 s JVM start when the CLI filters select unit tests only. filenamePattern is internal to vitest,
// hence the defensive read; when it is absent the broker is started.
function onlyUnitTests(project: TestProject): boolean {
  const filters = (project.vitest as unknown as { filenamePattern?: unknown }).filenamePattern;
  return Array.isArray(filters) && filters.length > 0 && filters.every((f) => String(f).includes("test/unit"));
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const external = kafkaBrokersFromEnv();
  if (external) {
    project.provide("kafkaBrokers", external);
    return undefined;
  }
  if (onlyUnitTests(project)) return undefined;
  const started = performance.now();
  const kafka = await startKafka();
  console.log(
    `[kafka] test broker ${kafka.brokers.join(",")} ready in ${Math.round(performance.now() - started)} ms (log ${kafka.logFile})`,
  );
  project.provide("kafkaBrokers", kafka.brokers);
  return () => kafka.destroy();
}
