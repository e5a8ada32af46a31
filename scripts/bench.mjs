#!/usr/bin/env node
// `npm run bench`: the side-by-side benchmark. The performance figures quoted in notes,
// README and docs/benchmarks.md come from here, never from tests.
//
// One run, one data set: N records of about 1 KiB JSON on a P-partition topic of a local Kafka
// broker (started here from scripts/kafka.mjs with a temp data dir, stopped at the end). Each
// contender runs as its own child process and reads that same topic from the beginning with a
// group id of its own:
//   kafka    bare kafkajs consumer, eachBatch, no HTTP (the Kafka ceiling)
//   http     bare undici Agent (64 connections) POSTing pre-signed bodies (the HTTP ceiling)
//   loop     kafkajs eachMessage -> JSON.parse -> sorted stringify -> HMAC -> undici POST, awaited
//   sidecar  `node dist/cli/index.js run` with a generated application.yml; with --tracing, once per
//            tracing variant (off, sampled-<ratio>), spans going to scripts/bench/otlp-sink.mjs
// The receiver is another child process (scripts/bench/receiver.mjs, 204 after 0 or 20 ms). CPU
// (utime+stime) and peak RSS (VmHWM) of each contender come from /proc; every rate is reported
// from the first delivery and from process start.
// Two more scenarios run the plain sidecar (receiver 0 ms, fan-out 1) on topics of their own,
// produced once: `scale` reads --scale-records records (does CPU and memory per record stay flat
// over a long run?), `replicas` starts 2, 3, ... sidecars (--replicas) at the same moment in one
// group on a --replica-partitions topic of N records (rebalances: duplicates, CPU per delivery).
// `npm run bench -- --help` lists the parameters; `--micro` runs the in-process micro benchmarks instead.
import { fork, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { freePort, startBroker } from "./kafka.mjs";
import { HEADERS, nowMs, payloadFactory, percentile, procCpuSeconds, procMemory, round, sleep } from "./bench/common.mjs";
import { renderMarkdown, renderSvg, renderTable, summarize } from "./bench/report.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_DIR = path.join(ROOT, "scripts", "bench");

// name: [default, description]; each is also read from BENCH_<NAME> (upper case, "-" -> "_").
const OPTIONS = {
  records: [20_000, "records on the topic, read by every contender"],
  partitions: [6, "partitions of the topic"],
  "payload-bytes": [1024, "size of each record's JSON value"],
  scenarios: [
    "0ms,20ms,steady,scale,replicas",
    "receiver delays to run (<n>ms), steady, scale and/or replicas (the last two need the sidecar in --contenders)",
  ],
  contenders: ["kafka,http,loop,sidecar", "which contenders to run"],
  fanouts: ["1,3", "sidecar fan-outs (subscriptions per record); the loop runs fan-out 3 only at 0 ms"],
  "steady-seconds": [20, "length of the steady-rate run"],
  "steady-contenders": ["sidecar", "who runs the steady run: sidecar and/or loop"],
  "steady-rate": [0, "records/s of the steady run; 0 = half the sidecar's measured 0 ms fan-out 1 rate"],
  "scale-records": [200_000, "records on the scale run's own topic (same payload size and partitions as the main topic)"],
  replicas: ["2,3", "replicas run: how many sidecar processes share one group, one measurement per count"],
  "replica-partitions": [12, "partitions of the replicas run's topic (which holds --records records)"],
  repeat: [1, "run every measurement this many times (interleaved); the table shows the median (use an odd number)"],
  "window-seconds": [
    60,
    "stop a measurement this long after its first delivery even if incomplete (per --records: the scale run's grows with --scale-records)",
  ],
  "slow-window-seconds": [15, "the same for the loop at a delayed receiver (20 ms x 20,000 would take 400 s)"],
  "max-seconds": [180, "hard limit per measurement from its start (grows with --scale-records like --window-seconds)"],
  "http-connections": [64, "connections of the HTTP ceiling's undici Agent"],
  "settle-ms": [1000, "pause between measurements"],
  "sidecar-cli": ["dist/cli/index.js", "the built CLI run as the sidecar (another build's, to compare)"],
  "sidecar-node-args": ["", "extra node flags for the sidecar process, e.g. --max-semi-space-size=16"],
  tracing: [
    "off",
    "sidecar tracing variants, each a contender of its own in every sidecar measurement: off and/or sampled-<ratio> (tracing on, spans to a local OTLP sink, sampler traceidratio), e.g. off,sampled-0,sampled-1",
  ],
  out: [".cache/bench", "where the JSON lines, table, Markdown and SVG of each run go"],
  docs: [false, "also write docs/benchmarks.md and docs/benchmarks.svg"],
  note: ["", "a note printed at the top of the Markdown report"],
  from: ["", "render the table, Markdown and SVG again from a run's .jsonl instead of running (with --docs, --note)"],
  micro: [false, "run the in-process micro benchmarks (canonical JSON, dispatch) instead"],
  help: [false, "this text"],
};

function parseOptions(argv) {
  const opts = {};
  for (const [name, [def]] of Object.entries(OPTIONS)) {
    const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`];
    opts[name] =
      env === undefined ? def : typeof def === "number" ? Number(env) : typeof def === "boolean" ? env === "1" || env === "true" : env;
  }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in OPTIONS)) throw new Error(`unknown argument ${argv[i]} (see --help)`);
    const def = OPTIONS[m[1]][0];
    if (typeof def === "boolean") opts[m[1]] = m[2] === undefined ? true : m[2] === "true" || m[2] === "1";
    else {
      const value = m[2] ?? argv[++i];
      if (value === undefined) throw new Error(`${argv[i - 1]} needs a value`);
      opts[m[1]] = typeof def === "number" ? Number(value) : value;
    }
  }
  for (const [name, [def]] of Object.entries(OPTIONS)) {
    if (typeof def === "number" && !(Number.isFinite(opts[name]) && opts[name] >= 0)) throw new Error(`--${name} must be a number >= 0`);
  }
  if (opts.records < 1 || opts.partitions < 1 || opts.repeat < 1 || opts["scale-records"] < 1 || opts["replica-partitions"] < 1)
    throw new Error("--records, --partitions, --repeat, --scale-records and --replica-partitions must be at least 1");
  opts.tracingVariants = parseTracing(opts.tracing);
  return opts;
}

/** The plain sidecar: tracing disabled. The scale and replicas runs use it whatever --tracing says. */
const TRACING_OFF = { name: "off", ratio: null, label: "sidecar", slug: "sidecar" };

/**
 * --tracing: "off" (tracing disabled, the contender `sidecar`) or "sampled-<ratio>" (tracing on,
 * OTEL_TRACES_SAMPLER=traceidratio, OTEL_TRACES_SAMPLER_ARG=<ratio>, the contender
 * `sidecar tracing <ratio>`). The bench's records carry no traceparent, so the ratio decides alone.
 */
function parseTracing(value) {
  const variants = [];
  for (const token of String(value)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    let variant;
    if (token === "off") variant = TRACING_OFF;
    else {
      const m = /^sampled-(\d+(?:\.\d+)?)$/.exec(token);
      const ratio = m ? Number(m[1]) : Number.NaN;
      if (!(ratio >= 0 && ratio <= 1)) throw new Error(`--tracing: off or sampled-<ratio from 0 to 1>, not ${token}`);
      variant = {
        name: `sampled-${ratio}`,
        ratio,
        label: `sidecar tracing ${ratio}`,
        slug: `sidecar-tracing-${String(ratio).replace(".", "_")}`,
      };
    }
    if (variants.some((v) => v.name === variant.name)) throw new Error(`--tracing: ${token} twice`);
    variants.push(variant);
  }
  if (variants.length === 0) throw new Error("--tracing: at least one variant (off, sampled-<ratio>)");
  return variants;
}

const usage = () =>
  `Usage: npm run bench -- [options]      (or node scripts/bench.mjs [options]; build first)\n\n${Object.entries(OPTIONS)
    .map(([name, [def, text]]) => `  --${name.padEnd(20)} ${text}${typeof def === "boolean" ? "" : ` (default ${JSON.stringify(def)})`}`)
    .join(
      "\n",
    )}\n\nEvery option can also be set as BENCH_<NAME>, e.g. BENCH_RECORDS=2000. KAFKA_BROKERS uses an existing\ncluster instead of starting a broker. PYFLY_CALLBACKS_* variables are passed on to the sidecar.\n\nScale and replicas: both run the plain sidecar (tracing off) at a 0 ms receiver, fan-out 1, each on a topic\nof its own produced once at the start (only when the scenario runs). scale reads --scale-records records and\nis compared with the 0 ms fan-out 1 row (CPU-s per 1k and peak RSS within 10%). replicas spawns, for each\ncount in --replicas, that many sidecars at the same moment with one group id (each its own admin port) on a\n--replica-partitions topic of --records records; it reports their total rate and CPU, the largest peak RSS\nand duplicate deliveries. E.g. --scenarios 0ms,scale,replicas --fanouts 1 for these two and the row they compare with.\n\nTracing cost: --tracing off,sampled-0,sampled-1 runs every sidecar measurement (each delay, fan-out and the\nsteady run; narrow it with e.g. --scenarios 0ms --fanouts 1) once per variant, interleaved with the other\ncontenders in each repetition. A tracing variant gets pyfly.callbacks.tracing.enabled: true,\nOTEL_EXPORTER_OTLP_ENDPOINT of a local OTLP sink (scripts/bench/otlp-sink.mjs, its own process, 200 to\nPOST /v1/traces; its requests, bytes and spans go into the JSON line as otlp_*), OTEL_TRACES_SAMPLER=traceidratio\nand OTEL_TRACES_SAMPLER_ARG=<ratio>; other OTEL_* variables of the bench's environment (e.g.\nOTEL_EXPORTER_OTLP_PROTOCOL, OTEL_BSP_*) are passed on to tracing variants only, otherwise SDK defaults apply.`;

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked, so a failure or Ctrl-C leaves nothing behind.

const children = new Set();

function track(child, name) {
  const tail = { out: "", err: "" };
  const keep = (key) => (chunk) => {
    tail[key] = (tail[key] + chunk.toString("utf8")).slice(-262_144);
  };
  child.stdout?.on("data", keep("out"));
  child.stderr?.on("data", keep("err"));
  children.add(child);
  const exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    name,
    pid: child.pid,
    exited,
    tail: (chars = 4_000) => `--- ${name} stdout ---\n${tail.out.slice(-chars)}\n--- ${name} stderr ---\n${tail.err.slice(-chars)}`,
  };
}

function forkChild(script, config, name) {
  const child = fork(path.join(BENCH_DIR, script), [JSON.stringify(config)], {
    cwd: ROOT,
    execArgv: [],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  return track(child, name);
}

/** Stops a child: "stop" over IPC (or SIGTERM), then SIGKILL after timeoutMs. */
async function stopChild(proc, timeoutMs = 10_000) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  if (proc.child.connected) proc.child.send({ type: "stop" });
  else proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
  await proc.exited;
  clearTimeout(timer);
}

async function startReceiver({ delayMs, expected, latency = false }) {
  return startServerChild("receiver.mjs", { delayMs, expected, latency }, `receiver-${delayMs}ms`);
}

/** The OTLP trace sink of a tracing variant (its own process: its CPU is not the sidecar's). */
function startOtlpSink() {
  return startServerChild("otlp-sink.mjs", {}, "otlp-sink");
}

/** A child HTTP server that reports `listening` and answers `stats` over IPC. */
async function startServerChild(script, config, name) {
  const proc = forkChild(script, config, name);
  const events = {};
  proc.child.on("message", (m) => {
    events[m.type] = m;
    proc.onEvent?.(m);
  });
  const until = Date.now() + 10_000;
  while (!events.listening) {
    if (proc.child.exitCode !== null || Date.now() > until) throw new Error(`${name} did not start\n${proc.tail()}`);
    await sleep(10);
  }
  proc.url = `http://127.0.0.1:${events.listening.port}`;
  proc.stats = async (request = {}) => {
    delete events.stats;
    proc.child.send({ type: "stats", ...request });
    const deadline = Date.now() + 10_000;
    while (!events.stats && Date.now() < deadline) await sleep(5);
    return events.stats;
  };
  return proc;
}

function spawnSidecar({ name, cli, brokers, topic, groupId, targets, adminPort, retryTopic, deadLetterTopic, nodeArgs, tracing }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sidecar-"));
  const configPath = path.join(dir, "application.yml");
  // YAML is a superset of JSON.
  const document = {
    pyfly: {
      callbacks: {
        enabled: true,
        "log-level": "warn",
        "shutdown-grace": "5s",
        http: { timeout: "10s", "allow-private-networks": true },
        retry: { topic: retryTopic },
        "dead-letter": { topic: deadLetterTopic },
        kafka: { brokers, "client-id": "bench-sidecar", "group-id": groupId, topics: [topic], "from-beginning": true },
        server: { port: adminPort, host: "127.0.0.1" },
        ...(tracing ? { tracing: { enabled: true } } : {}),
        configs: [
          {
            "tenant-id": HEADERS["x-tenant-id"],
            name: "bench",
            secret: "bench-secret",
            subscriptions: targets.map((url) => ({ "event-type": "*", "target-url": url })),
          },
        ],
      },
    },
  };
  fs.writeFileSync(configPath, `${JSON.stringify(document, null, 2)}\n`);
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith("PYFLY_CALLBACKS_")) env[k] = v;
  if (tracing) {
    // The production set-up otherwise: SDK defaults (batch processor, http/protobuf) unless the
    // bench's own environment sets OTEL_* (endpoint and sampler are always the bench's).
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith("OTEL_") && !/ENDPOINT|SAMPLER/.test(k)) env[k] = v;
    env.OTEL_EXPORTER_OTLP_ENDPOINT = tracing.endpoint;
    env.OTEL_TRACES_SAMPLER = "traceidratio";
    env.OTEL_TRACES_SAMPLER_ARG = String(tracing.ratio);
  }
  const args = [...nodeArgs, cli, "run", "--config", configPath];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const proc = track(child, name);
  void proc.exited.then(() => fs.rmSync(dir, { recursive: true, force: true }));
  return proc;
}

async function waitReady(adminPort, proc, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (proc.child.exitCode !== null) throw new Error(`sidecar exited before it was ready\n${proc.tail()}`);
    if (Date.now() > until) throw new Error(`sidecar not ready within ${timeoutMs} ms\n${proc.tail()}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(opts) {
  const runId = `${new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-")}-${process.pid}`;
  const outDir = path.resolve(ROOT, opts.out);
  fs.mkdirSync(outDir, { recursive: true });
  const jsonl = path.join(outDir, `${runId}.jsonl`);
  const results = [];
  const emit = (record) => {
    const line = JSON.stringify(record);
    console.log(line);
    fs.appendFileSync(jsonl, `${line}\n`);
  };

  const scenarioTokens = opts.scenarios
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const delays = [];
  const named = new Set();
  for (const token of scenarioTokens) {
    if (["steady", "scale", "replicas"].includes(token)) named.add(token);
    else if (/^\d+ms$/.test(token)) delays.push(Number.parseInt(token, 10));
    else throw new Error(`--scenarios: unknown scenario ${token} (use <n>ms, steady, scale or replicas)`);
  }
  const contenders = new Set(opts.contenders.split(",").map((s) => s.trim()));
  for (const c of contenders)
    if (!["kafka", "http", "loop", "sidecar"].includes(c)) throw new Error(`--contenders: unknown contender ${c}`);
  // The scale and replicas runs are the sidecar's alone: without it in --contenders they are skipped.
  for (const token of ["scale", "replicas"])
    if (named.has(token) && !contenders.has("sidecar")) log(`--scenarios ${token}: skipped, --contenders has no sidecar`);
  const scale = named.has("scale") && contenders.has("sidecar");
  const replicaCounts = named.has("replicas") && contenders.has("sidecar") ? opts.replicas.split(",").map(Number) : [];
  if (replicaCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error("--replicas: whole numbers from 1 to 16");
  const fanouts = opts.fanouts.split(",").map(Number);
  if (fanouts.some((f) => !Number.isInteger(f) || f < 1 || f > 50)) throw new Error("--fanouts: whole numbers from 1 to 50");
  const steadyContenders = opts["steady-contenders"]
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const c of steadyContenders)
    if (!["sidecar", "loop"].includes(c)) throw new Error(`--steady-contenders: sidecar and/or loop, not ${c}`);
  const cli = path.resolve(ROOT, opts["sidecar-cli"]);
  if (contenders.has("sidecar") && !fs.existsSync(cli)) throw new Error(`${cli} is missing: npm run build first`);

  const meta = machineAndVersions(opts);
  meta.run = runId;
  meta.command = `npm run bench -- ${process.argv.slice(2).map(shellQuote).join(" ")}`.trim();

  // The broker: a fresh one in a temp dir, unless KAFKA_BROKERS names a cluster.
  let brokers;
  let brokerPid;
  if (process.env.KAFKA_BROKERS) {
    brokers = process.env.KAFKA_BROKERS.split(",").map((s) => s.trim());
    log(`using KAFKA_BROKERS=${brokers.join(",")} (broker CPU is not measured)`);
  } else {
    state.brokerDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-kafka-"));
    const started = nowMs();
    state.broker = await startBroker({ port: await freePort(), dataDir: state.brokerDir, killOnExit: true });
    brokers = state.broker.brokers;
    brokerPid = state.broker.pid;
    meta.kafka = state.broker.version;
    log(
      `Kafka ${state.broker.version} on ${state.broker.bootstrap} (pid ${brokerPid}) ready in ${((nowMs() - started) / 1000).toFixed(1)} s`,
    );
  }

  // Quiet: the warm-up's "coordinator is loading" retries are expected; real failures throw.
  const kafka = new Kafka({ clientId: "bench", brokers, logLevel: logLevel.NOTHING });
  const prefix = `bench-${runId}`;
  const topic = `${prefix}-data`;
  const retryTopic = `${prefix}-retry`;
  const deadLetterTopic = `${prefix}-dead-letter`;
  const scaleTopic = scale ? `${prefix}-scale` : undefined;
  const replicaTopic = replicaCounts.length > 0 ? `${prefix}-replicas` : undefined;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic, numPartitions: opts.partitions },
      { topic: retryTopic },
      { topic: deadLetterTopic },
      ...(scaleTopic ? [{ topic: scaleTopic, numPartitions: opts.partitions }] : []),
      ...(replicaTopic ? [{ topic: replicaTopic, numPartitions: opts["replica-partitions"] }] : []),
    ],
    waitForLeaders: true,
  });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  state.closeKafka = async () => {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  };

  // The data, produced once: every contender reads the same records (the scale and replicas runs
  // the same kind of records on topics of their own).
  const payload = payloadFactory(opts["payload-bytes"]);
  await produceRecords(producer, payload, topic, opts.records, opts.partitions);
  if (scaleTopic) await produceRecords(producer, payload, scaleTopic, opts["scale-records"], opts.partitions);
  if (replicaTopic) await produceRecords(producer, payload, replicaTopic, opts.records, opts["replica-partitions"]);
  meta.value_bytes = Buffer.byteLength(payload(0, Math.round(nowMs() * 1000)));
  emit({ bench: "meta", ...meta });

  // One throwaway group first: the first join on a fresh broker creates __consumer_offsets, which
  // is slow on 2 cores and should not land on whichever contender happens to run first.
  const started = nowMs();
  await warmUp(kafka, topic, `${prefix}-warmup`);
  log(`warm-up group joined and read in ${((nowMs() - started) / 1000).toFixed(1)} s`);

  const plan = [];
  if (contenders.has("kafka") && delays.length > 0) plan.push({ scenario: "kafka", contender: "kafka" });
  for (const delayMs of delays) {
    const scenario = `${delayMs}ms`;
    if (contenders.has("http")) plan.push({ scenario, contender: "http", delayMs });
    if (contenders.has("loop"))
      for (const fanout of fanouts) if (delayMs === 0 || fanout === 1) plan.push({ scenario, contender: "loop", delayMs, fanout });
    if (contenders.has("sidecar"))
      for (const fanout of fanouts)
        for (const tracing of opts.tracingVariants) plan.push({ scenario, contender: "sidecar", delayMs, fanout, tracing });
  }
  // Both are compared with the plain sidecar's 0 ms fan-out 1 row, so they run like it.
  const plainSidecar = { contender: "sidecar", delayMs: 0, fanout: 1, tracing: TRACING_OFF };
  if (scale) plan.push({ ...plainSidecar, scenario: "scale", topic: scaleTopic, records: opts["scale-records"] });
  for (const replicas of replicaCounts)
    plan.push({ ...plainSidecar, scenario: "replicas", topic: replicaTopic, partitions: opts["replica-partitions"], replicas });

  const ctx = { runId, outDir, cli, opts, brokers, brokerPid, topic, retryTopic, deadLetterTopic, prefix, kafka, producer, admin, payload };
  let failures = 0;
  const run = async (m, rep) => {
    try {
      const result = await measure(ctx, m, rep);
      results.push(result);
      emit(result);
    } catch (error) {
      failures += 1;
      const record = {
        bench: "side-by-side",
        run: runId,
        rep,
        scenario: m.scenario,
        contender: m.tracing?.label ?? m.contender,
        fanout: m.fanout,
        replicas: m.replicas,
        ...(m.tracing ? { tracing: m.tracing.name } : {}),
        error: error.message.split("\n")[0],
      };
      emit(record);
      log(`FAILED ${m.scenario} ${m.tracing?.label ?? m.contender}: ${error.message}`);
    }
    await sleep(opts["settle-ms"]);
  };
  for (let rep = 1; rep <= opts.repeat; rep++) for (const m of plan) await run(m, rep);

  if (named.has("steady") && steadyContenders.length > 0) {
    let rate = opts["steady-rate"];
    if (!rate) {
      // The plain sidecar's rate (tracing off); with --tracing lacking "off", the first variant's.
      const tops = summarize(results).filter((r) => r.contender.startsWith("sidecar") && r.scenario === "0ms" && r.fanout === 1);
      const top = tops.find((r) => r.contender === "sidecar") ?? tops[0];
      rate = top ? Math.max(1, Math.round(top.records_per_s / 2)) : 1000;
      log(
        top
          ? `steady rate: half of the ${top.contender}'s ${top.records_per_s} records/s = ${rate}/s`
          : `steady rate: no 0 ms fan-out 1 sidecar figure in this run, using ${rate}/s`,
      );
    }
    for (let rep = 1; rep <= opts.repeat; rep++) {
      for (const contender of steadyContenders)
        for (const tracing of contender === "sidecar" ? opts.tracingVariants : [undefined])
          await run(
            { scenario: "steady", contender, delayMs: 0, fanout: 1, tracing, steady: { rate, seconds: opts["steady-seconds"] } },
            rep,
          );
    }
  }

  meta.load_end = os.loadavg().map((l) => round(l, 2));
  emit({ bench: "end", run: runId, load_end: meta.load_end, failures });
  writeReports(opts, outDir, runId, meta, results);
  return failures;
}

const shellQuote = (arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** The table (stderr and .txt), Markdown and SVG of a run; with --docs also docs/benchmarks.*. */
function writeReports(opts, outDir, runId, meta, results) {
  const summary = summarize(results);
  const table = renderTable(summary, meta);
  console.error(`\n${table}`);
  fs.writeFileSync(path.join(outDir, `${runId}.txt`), `${table}\n`);
  const svg = renderSvg(summary, meta);
  const md = renderMarkdown(summary, meta, "benchmarks.svg");
  fs.writeFileSync(path.join(outDir, `${runId}.svg`), svg);
  fs.writeFileSync(path.join(outDir, `${runId}.md`), md.replace("benchmarks.svg", `${runId}.svg`));
  log(`JSON lines, table, Markdown and SVG in ${path.relative(ROOT, outDir)}/${runId}.*`);
  if (opts.docs) {
    fs.writeFileSync(path.join(ROOT, "docs", "benchmarks.svg"), svg);
    fs.writeFileSync(path.join(ROOT, "docs", "benchmarks.md"), md);
    log("wrote docs/benchmarks.md and docs/benchmarks.svg");
  }
}

/** --from: the reports of an earlier run, from its JSON lines. */
function renderFrom(opts) {
  const file = path.resolve(ROOT, opts.from);
  const lines = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const { bench: _meta, ...meta } = lines.find((l) => l.bench === "meta") ?? {};
  if (!meta.run) throw new Error(`${file} has no meta line`);
  meta.load_end = lines.find((l) => l.bench === "end")?.load_end;
  if (opts.note) meta.options.note = opts.note;
  writeReports(
    opts,
    path.dirname(file),
    meta.run,
    meta,
    lines.filter((l) => l.bench === "side-by-side"),
  );
}

/**
 * Produces `count` records (keys k0, k1, ...) to a topic of `partitions` partitions. Up to 2,000
 * records per request make the scale run's topic quick to fill; about 500 per partition at most
 * (~500 KiB) keep each partition's batch under the broker's default message.max.bytes (1 MiB).
 */
async function produceRecords(producer, payload, topic, count, partitions) {
  const started = nowMs();
  const perSend = Math.min(2_000, 500 * partitions);
  for (let i = 0; i < count; i += perSend) {
    const sentAtUs = Math.round(nowMs() * 1000);
    const messages = Array.from({ length: Math.min(perSend, count - i) }, (_, j) => ({
      key: `k${i + j}`,
      value: payload(i + j, sentAtUs),
      headers: HEADERS,
    }));
    await producer.send({ topic, messages });
  }
  log(`produced ${count} records to ${topic} (${partitions} partitions) in ${((nowMs() - started) / 1000).toFixed(1)} s`);
}

async function warmUp(kafka, topic, groupId) {
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let got = false;
    await consumer.run({ eachBatch: async () => void (got = true) });
    const until = Date.now() + 90_000;
    while (!got && Date.now() < until) await sleep(50);
    if (!got) throw new Error("warm-up consumer read nothing within 90 s");
  } finally {
    await consumer.disconnect();
  }
}

/**
 * One measurement: a fresh receiver (unless it is the Kafka ceiling), the contender as a child
 * process (the replicas run: several sidecar processes, spawned together), then the wait for every
 * expected delivery (or the window's end), then /proc.
 */
async function measure(ctx, m, rep) {
  const { opts, brokers, brokerPid } = ctx;
  const fanout = m.fanout ?? 1;
  // `sidecar` is the process kind; a tracing variant is a contender of its own in the results.
  const contender = m.tracing?.label ?? m.contender;
  const slug = m.tracing?.slug ?? m.contender;
  const traced = m.tracing !== undefined && m.tracing.ratio !== null;
  const tag = `${m.scenario}-${slug}${m.fanout ? `-f${m.fanout}` : ""}${m.replicas ? `-x${m.replicas}` : ""}`;
  const groupId = `${ctx.prefix}-${tag}-r${rep}`;
  const records = m.steady ? Math.max(1, Math.round(m.steady.rate * m.steady.seconds)) : (m.records ?? opts.records);
  const expected = m.contender === "kafka" ? records : m.contender === "http" ? records : records * fanout;
  const label = `${m.scenario} ${contender}${m.fanout ? ` fan-out ${m.fanout}` : ""}${m.replicas ? ` ×${m.replicas}` : ""}${opts.repeat > 1 ? ` #${rep}` : ""}`;
  log(`${label}: ${expected} ${m.contender === "kafka" ? "records" : "deliveries"}...`);

  // The contender's processes: one, or the replicas, whose CPU is summed and whose peak RSS is the
  // largest of them.
  const procs = [];
  const st = { spawnAt: undefined, firstAt: undefined, cpuAtFirst: undefined, done: undefined };
  const onFirst = () => {
    if (st.firstAt !== undefined) return;
    st.firstAt = nowMs();
    st.cpuAtFirst = sum(procs.map((p) => procCpuSeconds(p.pid)));
  };
  const tails = () => procs.map((p) => p.tail()).join("\n");

  let receiver;
  let sink;
  let steadyTopic;
  let producing;
  const loadStart = round(os.loadavg()[0], 2);
  try {
    if (m.contender !== "kafka") receiver = await startReceiver({ delayMs: m.delayMs, expected, latency: Boolean(m.steady) });
    const targets = Array.from({ length: fanout }, (_, i) => `${receiver?.url}/s${i + 1}`);
    let readTopic = m.topic ?? ctx.topic;
    if (m.steady) {
      readTopic = steadyTopic = `${ctx.prefix}-steady-${slug}-r${rep}`;
      await ctx.admin.createTopics({ topics: [{ topic: steadyTopic, numPartitions: opts.partitions }], waitForLeaders: true });
    }

    if (traced) sink = await startOtlpSink();
    // Every admin port before the clock starts, so that the replicas are spawned in one go.
    const adminPorts = new Set();
    if (m.contender === "sidecar") while (adminPorts.size < (m.replicas ?? 1)) adminPorts.add(await freePort());

    const brokerCpu0 = brokerPid ? procCpuSeconds(brokerPid) : undefined;
    st.spawnAt = nowMs();
    if (m.contender === "kafka") {
      const proc = forkChild("kafka-ceiling.mjs", { brokers, topic: readTopic, groupId, records }, "kafka-ceiling");
      proc.child.on("message", (msg) => {
        if (msg.type === "first") onFirst();
        if (msg.type === "done") st.done = msg;
      });
      procs.push(proc);
    } else if (m.contender === "http") {
      procs.push(
        forkChild(
          "http-ceiling.mjs",
          { url: targets[0], deliveries: records, connections: opts["http-connections"], payloadBytes: opts["payload-bytes"] },
          "http-ceiling",
        ),
      );
    } else if (m.contender === "loop") {
      const proc = forkChild("loop.mjs", { brokers, topic: readTopic, groupId, targets }, "loop");
      proc.child.on("message", (msg) => {
        if (msg.type === "ready") st.ready = true;
      });
      procs.push(proc);
    } else {
      const nodeArgs = opts["sidecar-node-args"].split(" ").filter(Boolean);
      for (const adminPort of adminPorts)
        procs.push(
          spawnSidecar({
            name: m.replicas ? `sidecar-${procs.length + 1}` : "sidecar",
            cli: ctx.cli,
            brokers,
            topic: readTopic,
            groupId,
            targets,
            adminPort,
            retryTopic: ctx.retryTopic,
            deadLetterTopic: ctx.deadLetterTopic,
            nodeArgs,
            tracing: traced ? { ratio: m.tracing.ratio, endpoint: sink.url } : undefined,
          }),
        );
    }
    if (receiver) {
      receiver.onEvent = (msg) => {
        if (msg.type === "first") onFirst();
        if (msg.type === "done") st.done = msg;
      };
    }
    let exited;
    for (const proc of procs) void proc.exited.then((e) => (exited ??= { proc, ...e }));

    let steadyInfo;
    if (m.steady) {
      if (m.contender === "sidecar") await waitReady([...adminPorts][0], procs[0]);
      else {
        const until = nowMs() + 60_000;
        while (!st.ready && procs[0].child.exitCode === null && nowMs() < until) await sleep(20);
        if (!st.ready) throw new Error(`${procs[0].name} did not join its group within 60 s\n${tails()}`);
      }
      st.readyAt = nowMs();
      steadyInfo = { t0: undefined };
      producing = produceSteady(ctx, steadyTopic, m.steady, steadyInfo);
    }

    // --window-seconds and --max-seconds are meant for --records records; the scale run reads more.
    const span = Math.max(1, records / opts.records);
    const windowS = (m.contender === "loop" && m.delayMs > 0 ? opts["slow-window-seconds"] : opts["window-seconds"]) * span;
    const maxS = m.steady ? Math.max(opts["max-seconds"], m.steady.seconds + 90) : opts["max-seconds"] * span;
    const hardEnd = st.spawnAt + maxS * 1000;
    let stopReason = "complete";
    for (;;) {
      if (st.done) break;
      if (exited) {
        const { proc, code, signal } = exited;
        throw new Error(`${proc.name} exited (${JSON.stringify({ code, signal })}) before the end\n${proc.tail()}`);
      }
      const now = nowMs();
      if (now > hardEnd) {
        stopReason = `max-seconds (${round(maxS)} s)`;
        break;
      }
      if (!m.steady && st.firstAt !== undefined && now > st.firstAt + windowS * 1000) {
        stopReason = `window (${round(windowS)} s after the first delivery)`;
        break;
      }
      await sleep(10);
    }
    // /proc first, while the contender is still alive and before anything else runs.
    const cpuEnds = procs.map((p) => procCpuSeconds(p.pid));
    const memories = procs.map((p) => procMemory(p.pid));
    const endAt = nowMs();
    const brokerCpu = brokerPid ? procCpuSeconds(brokerPid) - brokerCpu0 : undefined;
    const receiverCpu = receiver ? procCpuSeconds(receiver.pid) : undefined;
    if (producing) await producing;
    const stats = receiver ? await receiver.stats({ t0: steadyInfo?.t0, skipMs: 2_000 }) : undefined;
    let otlp;
    if (sink) {
      // What was exported while measured, then (after a graceful stop, which flushes the batch
      // processor's queue) everything; CPU and RSS above are already taken.
      const measured = await sink.stats();
      await stopChild(procs[0]);
      const all = await sink.stats();
      otlp = {
        otlp_requests: all?.requests,
        otlp_bytes: all?.bytes,
        otlp_spans: all?.spans,
        otlp_requests_measured: measured?.requests,
        otlp_spans_measured: measured?.spans,
        otlp_undecoded: all?.undecoded || undefined,
        otlp_sink_cpu_s: round(procCpuSeconds(sink.pid), 2),
      };
    }

    let count;
    let firstAt;
    let lastAt;
    if (m.contender === "kafka") {
      if (!st.done) throw new Error(`the Kafka ceiling did not read ${records} records (${stopReason})\n${tails()}`);
      count = st.done.count;
      firstAt = st.done.firstAt;
      lastAt = st.done.at;
    } else {
      count = stats.distinct;
      firstAt = stats.firstAt;
      lastAt = stats.lastAt;
    }
    if (!count || firstAt === undefined) throw new Error(`nothing was delivered (${stopReason})\n${tails()}`);
    const windowSeconds = (lastAt - firstAt) / 1000;
    const fromStartSeconds = (lastAt - st.spawnAt) / 1000;
    const units = Math.min(count, expected);
    const perSecond = windowSeconds > 0 ? units / windowSeconds : undefined;
    const cpuEnd = sum(cpuEnds);
    const cpuWindow = st.cpuAtFirst !== undefined && cpuEnd !== undefined ? cpuEnd - st.cpuAtFirst : undefined;
    const result = {
      bench: "side-by-side",
      run: ctx.runId,
      rep,
      scenario: m.scenario,
      contender,
      ...(m.tracing ? { tracing: m.tracing.name } : {}),
      ...(m.replicas ? { replicas: m.replicas } : {}),
      receiver_delay_ms: m.delayMs ?? null,
      fanout: m.fanout ?? null,
      partitions: m.partitions ?? opts.partitions,
      records,
      expected,
      delivered: m.contender === "kafka" ? null : count,
      duplicates: stats ? stats.requests - stats.distinct : null,
      complete: count >= expected,
      stop: stopReason,
      window_s: round(windowSeconds, 3),
      records_per_s: round(m.contender === "http" ? perSecond : perSecond / fanout, 0),
      records_per_s_from_start: round(units / fanout / fromStartSeconds, 0),
      deliveries_per_s: m.contender === "kafka" ? null : round(perSecond, 0),
      startup_s: round((firstAt - st.spawnAt) / 1000, 2),
      wall_s: round(fromStartSeconds, 2),
      cpu_s: round(cpuWindow, 2),
      cpu_s_total: round(cpuEnd, 2),
      cpu_s_per_1k: round(cpuWindow === undefined ? undefined : (cpuWindow / units) * 1000, 4),
      cpu_s_per_1k_total: round((cpuEnd / units) * 1000, 4),
      peak_rss_mb: round(Math.max(...memories.map((mem) => mem?.hwmMb ?? Number.NaN)), 1),
      rss_at_end_mb: round(Math.max(...memories.map((mem) => mem?.rssMb ?? Number.NaN)), 1),
      ...(m.replicas
        ? {
            replica_cpu_s_total: cpuEnds.map((cpu) => round(cpu, 2)),
            replica_peak_rss_mb: memories.map((mem) => round(mem?.hwmMb, 1)),
          }
        : {}),
      broker_cpu_s: round(brokerCpu, 2),
      receiver_cpu_s: round(receiverCpu, 2),
      load_1m_before: loadStart,
      measured_s: round((endAt - st.spawnAt) / 1000, 2),
      ...otlp,
    };
    if (m.steady)
      Object.assign(result, {
        ready_s: round((st.readyAt - st.spawnAt) / 1000, 2),
        first_after_ready_s: round((firstAt - st.readyAt) / 1000, 2),
        steady_rate: m.steady.rate,
        steady_seconds: m.steady.seconds,
        latency: stats.latency,
        producer: steadyInfo.producer,
      });
    log(
      `${label}: ${result.records_per_s} records/s (${result.records_per_s_from_start} from start, first delivery after ${result.startup_s} s)${result.deliveries_per_s ? `, ${result.deliveries_per_s} deliveries/s` : ""}, ${result.cpu_s_per_1k} CPU-s/1k, peak RSS ${result.peak_rss_mb} MB${result.duplicates ? `, ${result.duplicates} duplicates` : ""}${result.complete ? "" : ` (partial: ${stopReason})`}${m.steady ? `, latency p50 ${stats.latency.p50_ms} p99 ${stats.latency.p99_ms} max ${stats.latency.max_ms} ms` : ""}${otlp ? `, OTLP ${otlp.otlp_requests} requests, ${otlp.otlp_spans} spans, ${round(otlp.otlp_bytes / 1024, 0)} KiB` : ""}`,
    );
    return result;
  } finally {
    // The contender's own output, for a look afterwards (kept per run in the out dir).
    await Promise.all(
      procs.map(async (proc, i) => {
        await stopChild(proc);
        const logFile = path.join(ctx.outDir, ctx.runId, `${tag}${m.replicas ? `-${i + 1}` : ""}-r${rep}.log`);
        fs.mkdirSync(path.dirname(logFile), { recursive: true });
        fs.writeFileSync(logFile, proc.tail(Infinity));
      }),
    );
    if (receiver) await stopChild(receiver, 3_000);
    if (sink) await stopChild(sink, 3_000);
    if (producing) await producing.catch(() => {});
    if (steadyTopic) await ctx.admin.deleteTopics({ topics: [steadyTopic] }).catch(() => {});
  }
}

/** The sum of CPU times, or undefined if one is missing (its process already gone). */
function sum(values) {
  return values.reduce((total, v) => (total === undefined || v === undefined ? undefined : total + v), 0);
}

/**
 * Produces rate x seconds records at a fixed rate. Each record carries its scheduled send time, so
 * a producer that falls behind does not hide latency (no coordinated omission).
 */
async function produceSteady(ctx, topic, { rate, seconds }, info) {
  const total = Math.max(1, Math.round(rate * seconds));
  const t0 = nowMs();
  info.t0 = t0;
  const hardEnd = t0 + seconds * 3_000 + 10_000;
  let sent = 0;
  const lags = [];
  while (sent < total && nowMs() < hardEnd) {
    const due = Math.min(total, Math.floor(((nowMs() - t0) * rate) / 1000) + 1);
    if (due > sent) {
      const messages = [];
      for (let i = sent; i < due; i++) {
        const scheduledUs = Math.round((t0 + (i * 1000) / rate) * 1000);
        messages.push({ key: `s${i}`, value: ctx.payload(i, scheduledUs), headers: HEADERS });
      }
      await ctx.producer.send({ topic, messages });
      // How late the producer was: acknowledged time minus the batch's first scheduled time.
      lags.push(nowMs() - (t0 + (sent * 1000) / rate));
      sent = due;
    } else {
      await sleep(Math.max(1, t0 + (sent * 1000) / rate - nowMs()));
    }
  }
  if (sent < total) log(`steady producer sent only ${sent} of ${total} records in time`);
  lags.sort((a, b) => a - b);
  info.producer = {
    sent,
    sends: lags.length,
    ack_lag_p50_ms: round(percentile(lags, 0.5), 1),
    ack_lag_p99_ms: round(percentile(lags, 0.99), 1),
    ack_lag_max_ms: round(lags.at(-1), 1),
  };
}

/** OTEL_* variables (endpoint and sampler aside) passed on to the tracing variants, for the record. */
function otelEnv() {
  const vars = Object.entries(process.env).filter(([k]) => k.startsWith("OTEL_") && !/ENDPOINT|SAMPLER/.test(k));
  return vars.length > 0 ? Object.fromEntries(vars) : undefined;
}

function machineAndVersions(opts) {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
  const pkgVersion = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  const git = (...args) => spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).stdout?.trim();
  return {
    nproc: os.availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model,
    memory_gb: round(memKb / 1024 / 1024, 1),
    kernel: os.release(),
    load_start: os.loadavg().map((l) => round(l, 2)),
    node: process.version,
    kafka: undefined,
    kafkajs: pkgVersion("kafkajs"),
    undici: pkgVersion("undici"),
    sidecar: JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).version,
    commit: git("rev-parse", "--short", "HEAD"),
    src_dirty: (git("status", "--porcelain", "--", "src") ?? "") !== "",
    date: new Date().toISOString(),
    options: {
      records: opts.records,
      partitions: opts.partitions,
      payload_bytes: opts["payload-bytes"],
      scenarios: opts.scenarios,
      contenders: opts.contenders,
      fanouts: opts.fanouts,
      steady_seconds: opts["steady-seconds"],
      scale_records: opts["scale-records"],
      replicas: opts.replicas,
      replica_partitions: opts["replica-partitions"],
      repeat: opts.repeat,
      http_connections: opts["http-connections"],
      sidecar_cli: opts["sidecar-cli"] === OPTIONS["sidecar-cli"][0] ? undefined : opts["sidecar-cli"],
      sidecar_node_args: opts["sidecar-node-args"] || undefined,
      tracing: opts.tracing === OPTIONS.tracing[0] ? undefined : opts.tracingVariants.map((v) => v.name).join(","),
      otel_env: opts.tracingVariants.some((v) => v.ratio !== null) ? otelEnv() : undefined,
      note: opts.note || undefined,
    },
  };
}

// ---------------------------------------------------------------------------------------------

const state = { broker: undefined, brokerDir: undefined, closeKafka: undefined, cleaning: undefined };

function cleanup(interrupted = false) {
  state.cleaning ??= (async () => {
    for (const child of children) child.kill("SIGKILL");
    await state.closeKafka?.().catch(() => {});
    if (state.broker) {
      log("stopping the broker");
      await state.broker
        .stop(interrupted ? { signal: "SIGKILL", timeoutMs: 5_000 } : { timeoutMs: 20_000 })
        .catch((e) => log(`broker stop: ${e.message}`));
    }
    if (state.brokerDir) fs.rmSync(state.brokerDir, { recursive: true, force: true });
  })();
  return state.cleaning;
}

process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanup(true).finally(() => process.exit(130));
  });
}

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (error) {
  console.error(error.message);
  process.exit(2);
}
if (opts.help) {
  console.log(usage());
  process.exit(0);
}
if (opts.from) {
  renderFrom(opts);
  process.exit(0);
}
if (opts.micro) {
  const { runMicro } = await import("./bench/micro.mjs");
  await runMicro();
  process.exit(0);
}
let code = 0;
try {
  const failures = await main(opts);
  if (failures > 0) {
    log(`${failures} measurement(s) failed`);
    code = 1;
  }
} catch (error) {
  log(error.stack ?? error.message);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
