// Types for scripts/kafka.mjs (kept as plain JS so it runs with bare `node`, no build step).
export declare const KAFKA_VERSION: string;

export interface KafkaJars {
  version: string;
  libsDir: string;
  /** false when Maven had to run */
  cached: boolean;
}
export declare function ensureKafkaJars(opts?: { version?: string; cacheDir?: string }): KafkaJars;

export interface StartBrokerOptions {
  /** 0 picks a free port; default 9092 */
  port?: number;
  /** default .cache/kafka-data/<port>; formatted only when it has no meta.properties */
  dataDir?: string;
  /** default <dataDir>/broker.log (appended across restarts) */
  logFile?: string;
  version?: string;
  /** JVM -Xmx, default "512m" */
  heap?: string;
  timeoutMs?: number;
  /** SIGKILL the broker when this Node process exits without calling stop() */
  killOnExit?: boolean;
}

export interface StopOptions {
  /** SIGKILL after this long, default 30000 */
  timeoutMs?: number;
  /** default "SIGTERM" (controlled shutdown); "SIGKILL" simulates a crash */
  signal?: "SIGTERM" | "SIGKILL";
}

export interface BrokerHandle {
  /** ["127.0.0.1:<port>"], ready for `new Kafka({ brokers })` */
  brokers: string[];
  /** brokers joined with "," (KAFKA_BROKERS format) */
  bootstrap: string;
  port: number;
  controllerPort: number;
  pid: number;
  dataDir: string;
  logFile: string;
  version: string;
  /** resolves false when the broker was not running */
  stop(opts?: StopOptions): Promise<boolean>;
}

export declare function startBroker(opts?: StartBrokerOptions): Promise<BrokerHandle>;
export declare function stopBroker(opts: { dataDir: string } & StopOptions): Promise<boolean>;
export declare function runningPid(dataDir: string): number | undefined;
export declare function defaultDataDir(port: number): string;
export declare function freePort(): Promise<number>;
