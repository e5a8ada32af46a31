/**
 * A real Prometheus server (Debian's `prometheus` package) as a child process for tests: found on
 * PATH or at /usr/bin/prometheus, installed with apt-get where the tests run as root (CI), started
 * on a free port with a generated configuration, and asked through its HTTP API. Also what a test
 * needs around it: the alert rules with every `for:` cut to 0s, and the Grafana dashboard's panel
 * queries with the dashboard variables filled in.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parse, stringify } from "yaml";
import { refusedPort } from "./receiver.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The prometheus binary: on PATH, else Debian's /usr/bin/prometheus; undefined when neither. */
export function findPrometheus(): string | undefined {
  return onPath("prometheus") ?? (executable("/usr/bin/prometheus") ? "/usr/bin/prometheus" : undefined);
}

/** Why `installPrometheus` cannot work here (not root, or no apt-get), or undefined when it can. */
export function cannotInstallPrometheus(): string | undefined {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return "not running as root";
  if (onPath("apt-get") === undefined) return "no apt-get on PATH";
  return undefined;
}

export const INSTALL_HINT = "install Debian's prometheus package (sudo apt-get install prometheus) to run it";

/**
 * `apt-get update && apt-get install prometheus` as scripts/check-deploy.sh does, with a
 * policy-rc.d (only while installing, and only if there is none) so the package's service is not
 * started. Returns the binary.
 */
export function installPrometheus(): string {
  const policy = "/usr/sbin/policy-rc.d";
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update", "-qq"], { env, stdio: ["ignore", "ignore", "pipe"], timeout: 300_000 });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "prometheus"], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 600_000,
    });
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const binary = findPrometheus();
  if (!binary) throw new Error("apt-get installed prometheus, but no prometheus binary is on PATH or at /usr/bin/prometheus");
  return binary;
}

/** One scrape target: `host:port` (path /metrics), with labels added to every series it exports. */
export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing" | "inactive";
  activeAt?: string;
  value: string;
}

export interface PromTarget {
  health: string;
  lastError: string;
  scrapeUrl: string;
  labels: Record<string, string>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export class PrometheusProcess {
  output = "";
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly closed: Promise<void>;

  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    running.add(child);
    const keep = (c: Buffer) => {
      this.output = (this.output + c.toString("utf8")).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.closed = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        running.delete(child);
        this.exited = { code, signal };
        rmSync(this.dir, { recursive: true, force: true });
        resolve();
      });
    });
  }

  /**
   * Starts `binary` on 127.0.0.1 (a free port) with a temp configuration and TSDB: scrape and rule
   * evaluation every `intervalSeconds`, `targets` scraped at /metrics, `rules` (a rules file's text)
   * loaded. Resolves once /-/ready answers 200.
   */
  static async start(
    binary: string,
    options: { targets: ScrapeTarget[]; rules: string; intervalSeconds?: number; readyTimeoutMs?: number },
  ): Promise<PrometheusProcess> {
    const dir = mkdtempSync(join(tmpdir(), "prometheus-e2e-"));
    const interval = `${options.intervalSeconds ?? 1}s`;
    writeFileSync(join(dir, "rules.yaml"), options.rules);
    const config = {
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: [join(dir, "rules.yaml")],
      scrape_configs: [
        {
          job_name: "callback-sidecar",
          metrics_path: "/metrics",
          static_configs: options.targets.map((t) => ({ targets: [t.address], labels: t.labels })),
        },
      ],
    };
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    const port = await refusedPort();
    const child = spawn(
      binary,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
      ],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    const prometheus = new PrometheusProcess(`http://127.0.0.1:${port}`, dir, child);
    child.on("error", (error) => (prometheus.output += `\nspawn error: ${error.message}`));
    const until = Date.now() + (options.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (prometheus.exited)
        throw new Error(`prometheus exited (${JSON.stringify(prometheus.exited)}) before it was ready\n${prometheus.tail()}`);
      const ready = await fetch(`${prometheus.url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return prometheus;
      if (Date.now() > until) {
        prometheus.stop();
        throw new Error(`prometheus not ready within ${options.readyTimeoutMs ?? 60_000} ms\n${prometheus.tail()}`);
      }
      await sleep(200);
    }
  }

  tail(lines = 30): string {
    return `--- prometheus output ---\n${this.output.split("\n").slice(-lines).join("\n")}`;
  }

  private async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const query = new URLSearchParams(params).toString();
    const res = await fetch(`${this.url}${path}${query ? `?${query}` : ""}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data?: T; error?: string; errorType?: string };
    if (body.status !== "success" || body.data === undefined) {
      throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${res.status} ${body.errorType ?? ""} ${body.error ?? ""}`);
    }
    return body.data;
  }

  /** An instant query (now): the vector's samples, or a scalar as one sample without labels. */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: unknown }>("/api/v1/query", { query: expr });
    if (data.resultType === "vector") return data.result as PromSample[];
    if (data.resultType === "scalar") return [{ metric: {}, value: data.result as [number, string] }];
    throw new Error(`prometheus: ${expr} returned a ${data.resultType}, not a vector`);
  }

  /** The active (pending or firing) alerts. */
  async alerts(): Promise<PromAlert[]> {
    return (await this.api<{ alerts: PromAlert[] }>("/api/v1/alerts")).alerts;
  }

  async targets(): Promise<PromTarget[]> {
    return (await this.api<{ activeTargets: PromTarget[] }>("/api/v1/targets")).activeTargets;
  }

  /** The rule groups as loaded (names, with their health and last error). */
  async rules(): Promise<{ name: string; rules: { name: string; health: string; lastError?: string; type: string }[] }[]> {
    return (
      await this.api<{ groups: { name: string; rules: { name: string; health: string; lastError?: string; type: string }[] }[] }>(
        "/api/v1/rules",
      )
    ).groups;
  }

  /** SIGTERM (SIGKILL after `timeoutMs`); resolves once it exited and its temp dir is gone. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.exited) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    try {
      await this.closed;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An alerting rule as written in a rules file. */
export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
}

/** The alerting rules of a rules file's text. */
export function alertRules(rulesText: string): AlertRule[] {
  const doc = parse(rulesText) as { groups?: { rules?: (AlertRule & { record?: string })[] }[] };
  return (doc.groups ?? []).flatMap((g) => (g.rules ?? []).filter((r) => typeof r.alert === "string"));
}

/** The rules file with every alert's `for:` set to `forDuration`, so a condition fires on its first evaluation. */
export function withoutForDurations(rulesText: string, forDuration = "0s"): string {
  const doc = parse(rulesText) as { groups?: { rules?: Record<string, unknown>[] }[] };
  for (const group of doc.groups ?? []) {
    for (const rule of group.rules ?? []) if (typeof rule.alert === "string") rule.for = forDuration;
  }
  return stringify(doc);
}

/** One query of a dashboard panel. */
export interface PanelQuery {
  panel: string;
  panelId: number | undefined;
  refId: string;
  expr: string;
}

interface GrafanaPanel {
  id?: number;
  title?: string;
  type?: string;
  targets?: { refId?: string; expr?: string; hide?: boolean }[];
  panels?: GrafanaPanel[];
}

/** Every panel target's `expr` in a Grafana dashboard, panels inside rows (collapsed or not) included. */
export function dashboardQueries(dashboard: { panels?: GrafanaPanel[] }): PanelQuery[] {
  const out: PanelQuery[] = [];
  const walk = (panels: GrafanaPanel[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr !== "string" || target.expr.trim() === "" || target.hide === true) continue;
        out.push({ panel: panel.title ?? `panel ${panel.id ?? "?"}`, panelId: panel.id, refId: target.refId ?? "?", expr: target.expr });
      }
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/**
 * `expr` with Grafana's variables (`$name`, `${name}`, `${name:format}`, `[[name]]`) replaced from
 * `values`; throws naming any variable `values` lacks, so a new dashboard variable is not queried
 * as literal text.
 */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c) as string;
    const value = values[name];
    if (value === undefined) throw new Error(`dashboard variable ${whole} in ${expr} has no test value`);
    return value;
  });
}
