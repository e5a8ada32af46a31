/**
 * The BUILT sidecar (`node dist/cli/index.js run --config <file>`) as a child process, the way it is
 * deployed, with a generated configuration pointing at a given broker and receivers. The admin
 * server listens on a free port (server.port 0, read back from the "admin server listening" log).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { CLI, ROOT } from "./cli.js";

/** What a test's sidecar consumes and where it writes, with the retry and dead-letter topics left to the defaults if unnamed. */
export interface SidecarSetupWithDefaults {
  brokers: string[];
  groupId: string;
  topics: string[];
  /** Left out: "<group-id>.retry" / "<group-id>.dead-letter" (see `defaultHandoffTopics`). */
  retryTopic?: string | undefined;
  deadLetterTopic?: string | undefined;
  /** `configs[]` as written in application.yml (kebab-case keys). */
  configs: Record<string, unknown>[];
  /** Deep-merged over the generated `pyfly.callbacks` (kebab-case keys), e.g. `{ kafka: { "max-in-flight": 64 } }`. */
  callbacks?: Record<string, unknown>;
}

export interface SidecarSetup extends SidecarSetupWithDefaults {
  /** Unique per test, so tests never share retry or dead-letter records. */
  retryTopic: string;
  deadLetterTopic: string;
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When the process exited (Date.now()). */
  at: number;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === "object" && v !== null && !Array.isArray(v);

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  return out;
}

/** The retry and dead-letter topics a sidecar uses when its configuration names none (named after its group). */
export function defaultHandoffTopics(groupId: string): { retryTopic: string; deadLetterTopic: string } {
  return { retryTopic: `${groupId}.retry`, deadLetterTopic: `${groupId}.dead-letter` };
}

/** The `pyfly.callbacks` document for a test: short timeouts, 127.0.0.1 receivers allowed, admin on a free port. */
export function sidecarConfig(setup: SidecarSetupWithDefaults): Plain {
  const base: Plain = {
    enabled: true,
    "shutdown-grace": "5s",
    "log-level": "info",
    http: { timeout: "1s", "allow-private-networks": true },
    retry: { ...(setup.retryTopic === undefined ? {} : { topic: setup.retryTopic }), "in-process-budget": "200ms" },
    "dead-letter": setup.deadLetterTopic === undefined ? {} : { topic: setup.deadLetterTopic },
    kafka: {
      brokers: setup.brokers,
      "client-id": `e2e-${setup.groupId}`,
      "group-id": setup.groupId,
      topics: setup.topics,
      // Topics are fresh per test and may be written before the group first joins.
      "from-beginning": true,
      "session-timeout": "10s",
      "connection-timeout": "2s",
    },
    server: { port: 0, host: "127.0.0.1" },
    configs: setup.configs,
  };
  return deepMerge(base, setup.callbacks ?? {});
}

/**
 * One `configs[]` entry (kebab-case keys): `tenant` signing with the pyfly scheme and `secret`, one
 * subscription per target; `extra` adds or overrides keys (max-attempts, backoff-ms, ...). Without
 * `extra` the tenant's retry settings are the defaults (5 attempts, 5 s backoff).
 */
export function callbackConfig(
  tenant: string,
  name: string,
  secret: string,
  targets: { eventType: string; url: string }[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    "tenant-id": tenant,
    name,
    secret,
    subscriptions: targets.map((t) => ({ "event-type": t.eventType, "target-url": t.url })),
    ...extra,
  };
}

/** Prometheus text parsed to `name{label="value",...}` (labels sorted) -> value, with a summing lookup. */
export class MetricMap extends Map<string, number> {
  static parse(text: string): MetricMap {
    const map = new MetricMap();
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
      if (!m) continue;
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1] as string] = (l[2] as string).replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      }
      map.set(MetricMap.key(m[1] as string, labels), Number(m[3]));
    }
    return map;
  }

  static key(name: string, labels: Record<string, string> = {}): string {
    const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
    return entries.length === 0 ? name : `${name}{${entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
  }

  /** Sum over every series of `name` whose labels include `labels` (0 when there is none). */
  sum(name: string, labels: Record<string, string> = {}): number {
    let total = 0;
    for (const [key, value] of this) {
      const { name: n, labels: l } = MetricMap.split(key);
      if (n !== name) continue;
      if (Object.entries(labels).every(([k, v]) => l[k] === v)) total += value;
    }
    return total;
  }

  /** Every series of `name`, with its labels. */
  series(name: string): { labels: Record<string, string>; value: number }[] {
    const out: { labels: Record<string, string>; value: number }[] = [];
    for (const [key, value] of this) {
      const split = MetricMap.split(key);
      if (split.name === name) out.push({ labels: split.labels, value });
    }
    return out;
  }

  private static split(key: string): { name: string; labels: Record<string, string> } {
    const brace = key.indexOf("{");
    if (brace < 0) return { name: key, labels: {} };
    const labels: Record<string, string> = {};
    for (const l of key.slice(brace + 1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)=("(?:[^"\\]|\\.)*")/g)) {
      labels[l[1] as string] = JSON.parse(l[2] as string) as string;
    }
    return { name: key.slice(0, brace), labels };
  }
}

const running = new Set<ChildProcess>();
// A failing test or a crashed runner must not leave sidecars consuming the shared broker.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// USER_HZ: 100 on every Linux the tests run on (getconf CLK_TCK).
const CLOCK_TICKS_PER_SECOND = 100;

export class SidecarProcess {
  stdout = "";
  stderr = "";
  readonly startedAt = Date.now();
  private exitResult: ExitResult | undefined;
  private readonly exited: Promise<ExitResult>;
  private port: number | undefined;

  private constructor(
    readonly name: string,
    readonly configPath: string,
    /** The `pyfly.callbacks` object it runs with. */
    readonly callbacks: Plain,
    private readonly env: NodeJS.ProcessEnv,
    private readonly child: ChildProcess,
  ) {
    running.add(child);
    child.stdout?.on("data", (c: Buffer) => (this.stdout += c.toString("utf8")));
    child.stderr?.on("data", (c: Buffer) => (this.stderr += c.toString("utf8")));
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        running.delete(child);
        this.exitResult = { code, signal, at: Date.now() };
        resolve(this.exitResult);
      });
    });
  }

  /**
   * Writes `config` (the whole YAML document, or a `pyfly.callbacks` object from sidecarConfig) to a
   * temp file and starts `node dist/cli/index.js run --config <file>` with a minimal environment
   * (PATH, HOME and `env`), so the runner's own KAFKA_BROKERS or PYFLY_* never leak in.
   */
  static start(name: string, callbacks: Plain, env: NodeJS.ProcessEnv = {}): SidecarProcess {
    const dir = mkdtempSync(join(tmpdir(), "sidecar-e2e-"));
    const configPath = join(dir, "application.yml");
    writeFileSync(configPath, stringify({ pyfly: { callbacks } }));
    const child = spawn(process.execPath, [CLI, "run", "--config", configPath], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const sidecar = new SidecarProcess(name, configPath, callbacks, env, child);
    void sidecar.exited.then(() => rmSync(dir, { recursive: true, force: true }));
    return sidecar;
  }

  /** A new process with the same configuration and environment (a restart after kill or exit). */
  restart(name = `${this.name}'`): SidecarProcess {
    return SidecarProcess.start(name, this.callbacks, this.env);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** CPU time (user + system, ms) the process has used so far, from /proc/<pid>/stat (Linux); undefined once it exited. */
  cpuMs(): number | undefined {
    if (this.exitResult || this.child.pid === undefined) return undefined;
    try {
      const stat = readFileSync(`/proc/${this.child.pid}/stat`, "utf8");
      // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
    } catch {
      return undefined;
    }
  }

  get exit(): ExitResult | undefined {
    return this.exitResult;
  }

  /** pino JSON lines from stdout (anything else is skipped). */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        // a line cut short by SIGKILL
      }
    }
    return out;
  }

  /** The last lines of both streams, for failure messages. */
  tail(lines = 30): string {
    const last = (s: string) => s.split("\n").slice(-lines).join("\n");
    return `--- ${this.name} stdout ---\n${last(this.stdout)}\n--- ${this.name} stderr ---\n${last(this.stderr)}`;
  }

  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs().find(predicate);
      if (found) return found;
      if (this.exitResult)
        throw new Error(`${this.name} exited (${JSON.stringify(this.exitResult)}) before the expected log line\n${this.tail()}`);
      if (Date.now() > until) throw new Error(`${this.name}: expected log line not seen within ${timeoutMs} ms\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** The admin server's port, once it listens. */
  async adminPort(timeoutMs = 30_000): Promise<number> {
    if (this.port !== undefined) return this.port;
    const line = await this.waitForLog((l) => l.msg === "admin server listening" && typeof l.port === "number", timeoutMs);
    this.port = line.port as number;
    return this.port;
  }

  async get(path: string): Promise<{ status: number; body: string }> {
    const port = await this.adminPort();
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  }

  /** Resolves once /readyz answers 200 (connected to Kafka and in the group). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    await this.adminPort(timeoutMs);
    for (;;) {
      if (this.exitResult) throw new Error(`${this.name} exited (${JSON.stringify(this.exitResult)}) before it was ready\n${this.tail()}`);
      const status = await this.get("/readyz").then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      if (Date.now() > until) throw new Error(`${this.name} not ready within ${timeoutMs} ms (last /readyz ${status})\n${this.tail()}`);
      await sleep(200);
    }
  }

  async metrics(): Promise<MetricMap> {
    const { status, body } = await this.get("/metrics");
    if (status !== 200) throw new Error(`${this.name}: /metrics answered ${status}`);
    return MetricMap.parse(body);
  }

  /**
   * Scrapes /metrics until `check` holds and returns that scrape; `what` (given the last scrape)
   * says how far it got when the timeout ends the wait. A failed scrape is retried.
   */
  async metricsUntil(what: (m: MetricMap) => string, check: (m: MetricMap) => boolean, timeoutMs = 30_000): Promise<MetricMap> {
    const until = Date.now() + timeoutMs;
    let last = new MetricMap();
    for (;;) {
      if (this.exitResult)
        throw new Error(`${this.name} exited (${JSON.stringify(this.exitResult)}) while waiting for ${what(last)}\n${this.tail()}`);
      const m = await this.metrics().catch(() => undefined);
      if (m) {
        last = m;
        if (check(m)) return m;
      }
      if (Date.now() > until) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what(last)}`);
      await sleep(250);
    }
  }

  /** The partitions of `topic` this process was last assigned by its group (consumer "events"), sorted. */
  assignment(topic: string, consumer = "events"): number[] {
    const joins = this.logs().filter((l) => l.msg === "joined consumer group" && l.consumer === consumer);
    return ((joins.at(-1)?.assignment as Record<string, number[]> | undefined)?.[topic] ?? []).slice().sort((a, b) => a - b);
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (!this.exitResult) this.child.kill(signal);
  }

  /** Resolves with the exit; rejects (after SIGKILL) when the process outlives `timeoutMs`. */
  async waitExit(timeoutMs = 30_000): Promise<ExitResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`${this.name} still running after ${timeoutMs} ms; killed\n${this.tail()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILLs every sidecar still running (for afterEach). */
  static async killAll(): Promise<void> {
    const children = [...running];
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(
      children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("close", r)))),
    );
  }
}
