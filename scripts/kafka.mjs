#!/usr/bin/env node
// Local single-node Apache Kafka (KRaft, combined broker+controller) for tests, demo and benchmarks.
// Prerequisites: Java 17+ and Maven (jars come from Maven Central, so no Docker and no tarball download).
// CLI: node scripts/kafka.mjs start|stop|status|jars [--port N] [--dir D]
// The same functions are exported for test/support/kafka-broker.ts (types in kafka.d.mts).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const KAFKA_VERSION = process.env.KAFKA_VERSION || "4.4.0";
// Kafka 4 logs through slf4j 1.7 -> log4j2; the kafka_2.13 pom leaves the backend to the distribution.
const LOG4J_VERSION = "2.24.3";
const DEPENDENCY_PLUGIN_VERSION = "3.8.1";
const HOST = "127.0.0.1";

function fail(message) {
  throw new Error(`[kafka] ${message}`);
}

function checkTool(cmd, args, hint) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) fail(`'${cmd}' not found on PATH. ${hint}`);
  return `${r.stdout}${r.stderr}`;
}

function checkJava() {
  const out = checkTool("java", ["-version"], "Install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless).");
  const major = Number(/version "(?:1\.)?(\d+)/.exec(out)?.[1] ?? 0);
  if (major < 17) fail(`Kafka 4 needs Java 17+, found: ${out.split("\n")[0]}`);
}

function pom(version) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.callback-sidecar</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>${DEPENDENCY_PLUGIN_VERSION}</version>
  </plugin></plugins></build>
</project>
`;
}

/** Resolves the broker's runtime classpath into .cache/kafka/<version>/libs; Maven runs only on a cold cache. */
export function ensureKafkaJars({ version = KAFKA_VERSION, cacheDir = path.join(ROOT, ".cache", "kafka") } = {}) {
  const dir = path.join(cacheDir, version);
  const libsDir = path.join(dir, "libs");
  if (fs.existsSync(libsDir)) return { version, libsDir, cached: true };
  checkTool("mvn", ["-v"], "Install Maven 3.8+ (e.g. apt-get install maven).");
  fs.mkdirSync(dir, { recursive: true });
  const pomFile = path.join(dir, "pom.xml");
  fs.writeFileSync(pomFile, pom(version));
  // Copy into a private dir and rename: parallel callers never see a half-filled libs dir.
  const tmp = `${libsDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const r = spawnSync(
    "mvn",
    ["-q", "-B", "-f", pomFile, "dependency:copy-dependencies", `-DoutputDirectory=${tmp}`, "-DincludeScope=runtime"],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    fail(`mvn could not resolve org.apache.kafka:kafka_2.13:${version}:\n${r.stdout}${r.stderr}`);
  }
  try {
    fs.renameSync(tmp, libsDir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(libsDir)) throw err;
  }
  return { version, libsDir, cached: false };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    sock.setTimeout(1000);
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
    sock.once("timeout", () => done(false));
  });
}

export function defaultDataDir(port) {
  return path.join(ROOT, ".cache", "kafka-data", String(port));
}

function readProps(file) {
  if (!fs.existsSync(file)) return {};
  return Object.fromEntries(
    fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes("=") && !l.startsWith("#"))
      .map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()]),
  );
}

/** Pid of the broker recorded in dataDir, if that process is alive and really a Kafka broker. */
export function runningPid(dataDir) {
  const pidFile = path.join(dataDir, "kafka.pid");
  if (!fs.existsSync(pidFile)) return undefined;
  const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
  if (pid > 0 && isKafka(pid)) return pid;
  fs.rmSync(pidFile, { force: true }); // stale: crashed broker or pid reused by something else
  return undefined;
}

function isKafka(pid) {
  try {
    // Zombies still answer kill(0); /proc tells them apart and guards against pid reuse.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    if (/\) Z /.test(stat)) return false;
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("kafka.Kafka");
  } catch {
    if (process.platform === "linux") return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

function logTail(file, lines = 40) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

const LOG4J2 = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
`;

function serverProperties({ port, controllerPort, logDirs }) {
  return `# generated by scripts/kafka.mjs on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${controllerPort}
listeners=PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}
advertised.listeners=PLAINTEXT://${HOST}:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${logDirs}
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
# fewer offsets partitions: the first group join creates them all, which is slow on 2 cores
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`;
}

/**
 * Starts a broker (formatting the storage only when the data dir has no meta.properties, so a stopped broker can be
 * restarted with the same port and data to simulate an outage). Resolves once a kafkajs admin round trip succeeds.
 */
export async function startBroker({
  port = 9092,
  dataDir,
  logFile,
  version = KAFKA_VERSION,
  heap = "512m",
  timeoutMs = 120_000,
  killOnExit = false,
} = {}) {
  checkJava();
  const { libsDir } = ensureKafkaJars({ version });
  if (port === 0) port = await freePort();
  dataDir = path.resolve(dataDir ?? defaultDataDir(port));
  logFile = path.resolve(logFile ?? path.join(dataDir, "broker.log"));
  fs.mkdirSync(dataDir, { recursive: true });
  const existing = runningPid(dataDir);
  if (existing) fail(`a broker (pid ${existing}) already runs with data dir ${dataDir}`);
  if (!(await portIsFree(port))) fail(`port ${port} on ${HOST} is already in use`);

  const propsFile = path.join(dataDir, "server.properties");
  const logDirs = path.join(dataDir, "logs");
  const formatted = fs.existsSync(path.join(logDirs, "meta.properties"));
  // Reuse the controller port of a formatted dir: the static voter set must stay the same across restarts.
  const prevController = /:(\d+)$/.exec(readProps(propsFile)["controller.quorum.voters"] ?? "")?.[1];
  const controllerPort = formatted && prevController ? Number(prevController) : await freePort();
  fs.writeFileSync(propsFile, serverProperties({ port, controllerPort, logDirs }));
  const log4jFile = path.join(dataDir, "log4j2.properties");
  fs.writeFileSync(log4jFile, LOG4J2);

  const classpath = ["-cp", path.join(libsDir, "*")];
  const jvm = [`-Dlog4j2.configurationFile=${log4jFile}`, `-Dkafka.logs.dir=${dataDir}`, "-Djava.awt.headless=true"];
  if (!formatted) {
    // Same shape as Kafka's Uuid.randomUuid(): never a leading "-", which argparse would take for an option.
    const clusterId = randomBytes(16).toString("base64url").replace(/^-/, "A");
    const r = spawnSync(
      "java",
      [...jvm, ...classpath, "kafka.tools.StorageTool", "format", `--cluster-id=${clusterId}`, "--config", propsFile],
      {
        encoding: "utf8",
      },
    );
    if (r.status !== 0) fail(`formatting ${logDirs} failed:\n${r.stdout}${r.stderr}`);
  }

  const out = fs.openSync(logFile, "a");
  const child = spawn(
    "java",
    [
      `-Xms128m`,
      `-Xmx${heap}`,
      "-XX:+UseG1GC",
      "-XX:MaxGCPauseMillis=20",
      "-XX:+ExitOnOutOfMemoryError",
      ...jvm,
      ...classpath,
      "kafka.Kafka",
      propsFile,
    ],
    { detached: true, stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
  child.unref();
  const pid = child.pid;
  const pidFile = path.join(dataDir, "kafka.pid");
  fs.writeFileSync(pidFile, `${pid}\n`);
  let exited = false;
  child.once("exit", () => (exited = true));
  const stop = (opts) => stopBroker({ dataDir, ...opts });
  const onExit = () => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  };
  if (killOnExit) process.once("exit", onExit);

  const brokers = [`${HOST}:${port}`];
  const deadline = Date.now() + timeoutMs;
  while (!(await isReady(port, brokers))) {
    if (exited) fail(`broker exited during startup; ${logFile}:\n${logTail(logFile)}`);
    if (Date.now() > deadline) {
      await stop();
      fail(`broker not ready after ${timeoutMs} ms; ${logFile}:\n${logTail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    brokers,
    bootstrap: brokers.join(","),
    port,
    controllerPort,
    pid,
    dataDir,
    logFile,
    version,
    stop: async (opts) => {
      process.removeListener("exit", onExit);
      return stop(opts);
    },
  };
}

async function isReady(port, brokers) {
  if (!(await canConnect(port))) return false;
  let kafkajs;
  try {
    kafkajs = await import("kafkajs");
  } catch {
    return true; // no node_modules yet: a listening socket is the best signal we have
  }
  const { Kafka, logLevel } = kafkajs.default ?? kafkajs;
  const admin = new Kafka({ brokers, clientId: "kafka-mjs-probe", logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    const { brokers: live } = await admin.describeCluster();
    return live.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * SIGTERM (controlled shutdown), SIGKILL after timeoutMs; signal "SIGKILL" simulates a crash.
 * Resolves false when nothing was running.
 */
export async function stopBroker({ dataDir, timeoutMs = 30_000, signal = "SIGTERM" } = {}) {
  const pid = runningPid(path.resolve(dataDir));
  const pidFile = path.join(path.resolve(dataDir), "kafka.pid");
  if (!pid) return false;
  process.kill(pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (isKafka(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      while (isKafka(pid)) await new Promise((r) => setTimeout(r, 50));
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fs.rmSync(pidFile, { force: true });
  return true;
}

function parseArgs(argv) {
  const args = { cmd: argv[0] };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === "--port") args.port = Number(argv[++i]);
    else if (argv[i] === "--dir") args.dir = argv[++i];
    else fail(`unknown argument ${argv[i]}`);
  }
  args.port ??= process.env.KAFKA_PORT !== undefined ? Number(process.env.KAFKA_PORT) : 9092;
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) fail(`invalid port`);
  return args;
}

async function main() {
  const { cmd, port, dir } = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const ms = () => `${Math.round(performance.now() - t0)} ms`;
  if (cmd === "jars") {
    const { libsDir, cached } = ensureKafkaJars();
    console.error(`[kafka] ${cached ? "cached" : "resolved"} ${libsDir} in ${ms()}`);
    return;
  }
  if (cmd !== "start" && port === 0) fail(`${cmd} needs the concrete --port the broker was started with`);
  const dataDir = path.resolve(dir ?? defaultDataDir(port));
  if (cmd === "start") {
    const pid = port !== 0 ? runningPid(dataDir) : undefined;
    if (pid) {
      console.error(`[kafka] already running (pid ${pid})`);
      console.log(
        `${HOST}:${readProps(path.join(dataDir, "server.properties")).listeners?.match(/PLAINTEXT:\/\/[^:]+:(\d+)/)?.[1] ?? port}`,
      );
      return;
    }
    const b = await startBroker({ port, dataDir: dir });
    console.error(`[kafka] Kafka ${b.version} pid ${b.pid} ready in ${ms()}; data ${b.dataDir}; log ${b.logFile}`);
    console.log(b.bootstrap);
  } else if (cmd === "stop") {
    const stopped = await stopBroker({ dataDir });
    console.error(stopped ? `[kafka] stopped in ${ms()}` : `[kafka] not running (${dataDir})`);
  } else if (cmd === "status") {
    const pid = runningPid(dataDir);
    if (!pid) {
      console.error(`[kafka] not running (${dataDir})`);
      process.exitCode = 1;
      return;
    }
    console.log(`running pid ${pid} on ${HOST}:${port}`);
  } else {
    fail("usage: node scripts/kafka.mjs start|stop|status|jars [--port N] [--dir D]");
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
