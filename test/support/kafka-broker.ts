// Typed test wrapper around scripts/kafka.mjs (the same code backs `npm run kafka:start`).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  KAFKA_VERSION,
  ensureKafkaJars,
  freePort,
  startBroker,
  type BrokerHandle,
  type KafkaJars,
  type StartBrokerOptions,
  type StopOptions,
} from "../../scripts/kafka.mjs";

export { KAFKA_VERSION, ensureKafkaJars, freePort };
export type { BrokerHandle, KafkaJars, StartBrokerOptions, StopOptions };

/** KAFKA_BROKERS (comma separated) if set: tests then use that cluster and start nothing. */
export function kafkaBrokersFromEnv(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const list = env.KAFKA_BROKERS?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return list && list.length > 0 ? list : undefined;
}

/**
 * A broker owned by a test. Port and data dir stay fixed for its lifetime, so `stop()` + `start()` simulates an
 * outage of the same cluster (same topics, offsets, cluster id) rather than a fresh one.
 */
export class LocalKafka {
  private handle: BrokerHandle | undefined;

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly options: Omit<StartBrokerOptions, "port" | "dataDir">,
    private readonly ownsDataDir: boolean,
  ) {}

  /** Defaults: a free port and a fresh temp data dir (removed by destroy()). */
  static async start(opts: StartBrokerOptions = {}): Promise<LocalKafka> {
    const { port: requested = 0, dataDir: requestedDir, ...rest } = opts;
    const port = requested === 0 ? await freePort() : requested;
    const dataDir = requestedDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "callback-sidecar-kafka-"));
    const kafka = new LocalKafka(port, dataDir, rest, requestedDir === undefined);
    try {
      await kafka.start();
    } catch (err) {
      await kafka.destroy();
      throw err;
    }
    return kafka;
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  /** undefined while stopped */
  get pid(): number | undefined {
    return this.handle?.pid;
  }

  get logFile(): string {
    return this.options.logFile ?? path.join(this.dataDir, "broker.log");
  }

  /** Starts again after stop(); no-op while running. */
  async start(): Promise<void> {
    if (this.handle) return;
    this.handle = await startBroker({ killOnExit: true, ...this.options, port: this.port, dataDir: this.dataDir });
  }

  /** Controlled shutdown (SIGTERM, SIGKILL after opts.timeoutMs); `{ signal: "SIGKILL" }` simulates a crash. */
  async stop(opts: StopOptions = {}): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.stop(opts);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops and deletes the data dir if this instance created it. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownsDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export function startKafka(opts?: StartBrokerOptions): Promise<LocalKafka> {
  return LocalKafka.start(opts);
}
