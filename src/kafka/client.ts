import { readFileSync } from "node:fs";
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from "kafkajs";
import type { Logger } from "pino";
import type { SidecarSettings } from "../config/settings.js";

const LEVELS: Record<number, "error" | "warn" | "info" | "debug"> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

// The publisher resends a batch unchanged once kafkajs' own retries give up, which keeps the
// guarantee this warns about; at warn level it would alarm operators on every start.
const DEMOTED_TO_DEBUG = new Set(["Limiting retries for the idempotent producer may invalidate EoS guarantees"]);

function levelOf(level: number, message: string): "error" | "warn" | "info" | "debug" {
  if (DEMOTED_TO_DEBUG.has(message)) return "debug";
  // kafkajs logs every error response of the broker ("Response Fetch(...)") before retrying it
  // itself, e.g. "the coordinator is loading" on every start against a fresh broker; what stays
  // refused reaches our code, which logs it at error with its consequence. A normal start is quiet.
  if (message.startsWith("Response ")) return "debug";
  return LEVELS[level] ?? "info";
}

/** A kafkajs client from `pyfly.callbacks.kafka`, logging through pino. */
export function createKafka(settings: SidecarSettings["kafka"], logger: Logger): Kafka {
  const kafkaLogger = logger.child({ component: "kafkajs" });
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    // kafkajs' INFO is chatty about routine group work; keep it at debug unless asked for.
    logLevel: logger.isLevelEnabled("debug") ? logLevel.INFO : logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }) => {
        const { message, ...extra } = log;
        kafkaLogger[levelOf(level, message)](extra, message);
      },
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 10_000 },
  };
  if (settings.ssl.enabled) {
    config.ssl = {
      rejectUnauthorized: settings.ssl.rejectUnauthorized,
      ...(settings.ssl.caFile ? { ca: [readFileSync(settings.ssl.caFile, "utf8")] } : {}),
      ...(settings.ssl.certFile ? { cert: readFileSync(settings.ssl.certFile, "utf8") } : {}),
      ...(settings.ssl.keyFile ? { key: readFileSync(settings.ssl.keyFile, "utf8") } : {}),
    };
  }
  if (settings.sasl.mechanism !== "none") {
    config.sasl = {
      mechanism: settings.sasl.mechanism,
      username: settings.sasl.username ?? "",
      password: settings.sasl.password ?? "",
    } as SASLOptions;
  }
  return new Kafka(config);
}
