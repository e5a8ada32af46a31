// The side-by-side benchmark's summary: medians over repeats, ratios, the text table, the Markdown
// report (docs/benchmarks.md) and a hand-written SVG bar chart (docs/benchmarks.svg).

export const CONTENDER_LABEL = {
  kafka: "Kafka ceiling: bare kafkajs, eachBatch, no HTTP",
  http: "HTTP ceiling: bare undici, pre-signed bodies",
  loop: "hand-written loop (eachMessage, awaited)",
  sidecar: "callback-sidecar run",
};
const SHORT_LABEL = { kafka: "Kafka ceiling", http: "HTTP ceiling", loop: "hand-written loop", sidecar: "callback-sidecar" };
const COLOR = { kafka: "#8c8c8c", http: "#4e79a7", loop: "#f28e2b", sidecar: "#59a14f" };
const ORDER = { kafka: 0, http: 1, loop: 2, sidecar: 3 };
// Lighter greens for the sidecar's tracing variants (`--tracing`), in the order they appear.
const VARIANT_COLORS = ["#8cd17d", "#b6992d", "#86bcb6", "#499894", "#d4a6c8"];

/**
 * A contender label's kind: "sidecar tracing 1" (a tracing variant, `--tracing`) is a sidecar.
 * The targets are about the plain `sidecar` (tracing off) only.
 */
const kindOf = (contender) => (contender.startsWith("sidecar") ? "sidecar" : contender);
const shortLabel = (contender) => `${SHORT_LABEL[kindOf(contender)] ?? contender}${contender.slice(kindOf(contender).length)}`;
/** Sort rank within a kind: tracing off first, then the sampling ratio. */
const tracingRank = (row) => {
  const m = /^sampled-(.+)$/.exec(row.tracing ?? "");
  return m ? Number(m[1]) : row.contender === "sidecar" ? -1 : -0.5;
};

/** The rows of the main table: the ceilings and every receiver delay (`<n>ms`). */
const isMain = (row) => row.scenario === "kafka" || /^\d+ms$/.test(row.scenario);
/** The scale and replicas runs: the plain sidecar at 0 ms, fan-out 1, on topics of their own. */
const isScaleOrReplicas = (row) => row.scenario === "scale" || row.scenario === "replicas";

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

/**
 * One row per scenario, contender, fan-out (and replica count): the repeat with the median
 * records/s, plus ratios.
 */
export function summarize(results) {
  const groups = new Map();
  for (const r of results) {
    if (r.error || r.records_per_s === undefined) continue;
    const key = `${r.scenario}|${r.contender}|${r.fanout}|${r.replicas ?? 1}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const rows = [];
  for (const runs of groups.values()) {
    const m = median(runs.map((r) => r.records_per_s));
    const row = { ...runs.find((r) => r.records_per_s === m) };
    row.reps = runs.length;
    row.range = [Math.min(...runs.map((r) => r.records_per_s)), Math.max(...runs.map((r) => r.records_per_s))];
    // Duplicates and completeness over every repeat: one bad repeat must not hide behind the median.
    row.duplicates = runs.some((r) => r.duplicates === null || r.duplicates === undefined)
      ? row.duplicates
      : Math.max(...runs.map((r) => r.duplicates));
    row.complete = runs.every((r) => r.complete);
    // CPU over the repeats on its own (the tracing comparison is about CPU, not about rate).
    const cpus = runs.map((r) => r.cpu_s_per_1k).filter((v) => v !== undefined && v !== null);
    if (cpus.length > 0) {
      row.cpu_s_per_1k_median = median(cpus);
      row.cpu_range = [Math.min(...cpus), Math.max(...cpus)];
    }
    rows.push(row);
  }
  const find = (scenario, contender, fanout) =>
    rows.find((r) => r.scenario === scenario && r.contender === contender && (fanout === undefined || r.fanout === fanout));
  const kafka = find("kafka", "kafka");
  for (const row of rows) {
    if (!isMain(row) || row.scenario === "kafka" || row.contender === "http") continue;
    const http = find(row.scenario, "http");
    const f = row.fanout ?? 1;
    const ceilings = [kafka?.records_per_s, http ? http.deliveries_per_s / f : undefined].filter((v) => v !== undefined);
    if (ceilings.length > 0) {
      row.lower_ceiling_records_per_s = Math.round(Math.min(...ceilings));
      row.lower_ceiling = kafka && (!http || kafka.records_per_s <= http.deliveries_per_s / f) ? "kafka" : "http";
      row.vs_lower_ceiling = row.records_per_s / Math.min(...ceilings);
    }
    if (kindOf(row.contender) === "sidecar") {
      const loop = find(row.scenario, "loop", row.fanout);
      if (loop) row.vs_loop = row.deliveries_per_s / loop.deliveries_per_s;
      if (loop?.records_per_s_from_start && row.records_per_s_from_start)
        row.vs_loop_from_start = row.records_per_s_from_start / loop.records_per_s_from_start;
      if (loop) row.cpu_vs_loop = row.cpu_s_per_1k / loop.cpu_s_per_1k;
    }
  }
  // The scale and replicas runs against one plain sidecar process reading --records records.
  const base = find("0ms", "sidecar", 1);
  if (base)
    for (const row of rows.filter(isScaleOrReplicas)) {
      row.cpu_vs_base = row.cpu_s_per_1k / base.cpu_s_per_1k;
      row.rss_vs_base = row.peak_rss_mb / base.peak_rss_mb;
    }
  // Tracing variants against the plain sidecar (tracing off) of the same scenario and fan-out.
  for (const row of rows) {
    if (kindOf(row.contender) !== "sidecar" || row.contender === "sidecar") continue;
    const off = find(row.scenario, "sidecar", row.fanout);
    if (!off) continue;
    if (row.cpu_s_per_1k_median !== undefined && off.cpu_s_per_1k_median !== undefined) {
      row.cpu_vs_off = row.cpu_s_per_1k_median / off.cpu_s_per_1k_median;
      row.cpu_delta_vs_off = row.cpu_s_per_1k_median - off.cpu_s_per_1k_median;
    }
    if (off.records_per_s) row.rate_vs_off = row.records_per_s / off.records_per_s;
  }
  const LAST = ["steady", "scale", "replicas"];
  const scenarioRank = (s) => (s === "kafka" ? -1 : LAST.includes(s) ? 1e9 + LAST.indexOf(s) : Number.parseInt(s, 10));
  rows.sort(
    (a, b) =>
      scenarioRank(a.scenario) - scenarioRank(b.scenario) ||
      (ORDER[kindOf(a.contender)] ?? 9) - (ORDER[kindOf(b.contender)] ?? 9) ||
      (a.fanout ?? 0) - (b.fanout ?? 0) ||
      (a.replicas ?? 1) - (b.replicas ?? 1) ||
      tracingRank(a) - tracingRank(b),
  );
  return rows;
}

const fmtInt = (n) => (n === undefined || n === null ? "–" : Math.round(n).toLocaleString("en-US"));
const fmtK = (n) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n >= 1000 ? `${(n / 1000).toFixed(2)}k` : String(Math.round(n)));
const fmtNum = (n, d) => (n === undefined || n === null ? "–" : n.toFixed(d));
// One decimal from 10 up, so that a ratio just short of a target (19.6 against 20) does not read as met.
const fmtRatio = (n) => (n === undefined ? "–" : `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`);

/** records/s (first to last delivery; the range over repeats), records/s from process start, deliveries/s. */
function throughputCells(r) {
  const star = r.complete ? "" : "*";
  const range = r.reps > 1 ? ` (${fmtInt(r.range[0])}–${fmtInt(r.range[1])})` : "";
  const cell = (n) => (n === undefined || n === null ? "–" : `${fmtInt(n)}${star}`);
  return [`${fmtInt(r.records_per_s)}${star}${range}`, cell(r.records_per_s_from_start), cell(r.deliveries_per_s)];
}

const MAIN_HEADER = [
  "scenario",
  "contender",
  "fan-out",
  "records/s",
  "records/s from start",
  "deliveries/s",
  "first delivery s",
  "CPU-s per 1k",
  "CPU-s per 1k incl. start-up",
  "peak RSS MB",
  "× lower ceiling",
  "× loop",
];

function mainRows(rows) {
  return rows.filter(isMain).map((r) => {
    const [rate, fromStart, deliveries] = throughputCells(r);
    return [
      r.scenario === "kafka" ? "any" : `receiver ${r.scenario}`,
      shortLabel(r.contender),
      r.fanout ?? "–",
      rate,
      fromStart,
      deliveries,
      fmtNum(r.startup_s, 2),
      fmtNum(r.cpu_s_per_1k, 3),
      fmtNum(r.cpu_s_per_1k_total, 3),
      fmtNum(r.peak_rss_mb, 0),
      r.vs_lower_ceiling === undefined ? "–" : `${r.vs_lower_ceiling.toFixed(2)} (${r.lower_ceiling})`,
      fmtRatio(r.vs_loop),
    ];
  });
}

const SCALE_HEADER = [
  "run",
  "contender",
  "partitions",
  "records",
  "records/s",
  "records/s from start",
  "first delivery s",
  "CPU-s per 1k",
  "CPU-s per 1k incl. start-up",
  "peak RSS MB",
  "duplicates",
  "complete",
  "× base CPU per 1k",
  "× base peak RSS",
];

/**
 * The scale and replicas runs, after the row they are compared with (base: the plain sidecar at
 * 0 ms, fan-out 1, one process reading --records records).
 */
function scaleRows(rows) {
  const runs = rows.filter((r) => isScaleOrReplicas(r) && r.contender === "sidecar");
  if (runs.length === 0) return [];
  const base = rows.find((r) => r.scenario === "0ms" && r.contender === "sidecar" && r.fanout === 1);
  const fmtVs = (n) => (n === undefined ? "–" : n.toFixed(2));
  return [...(base ? [base] : []), ...runs].map((r) => {
    const [rate, fromStart] = throughputCells(r);
    return [
      r === base ? "base: receiver 0ms" : r.scenario,
      `${shortLabel(r.contender)}${r.replicas ? ` ×${r.replicas}` : ""}`,
      fmtInt(r.partitions),
      fmtInt(r.records),
      rate,
      fromStart,
      fmtNum(r.startup_s, 2),
      fmtNum(r.cpu_s_per_1k, 3),
      fmtNum(r.cpu_s_per_1k_total, 3),
      fmtNum(r.peak_rss_mb, 0),
      fmtInt(r.duplicates),
      r.complete ? "yes" : `no (${r.stop})`,
      r === base ? "1.00" : fmtVs(r.cpu_vs_base),
      r === base ? "1.00" : fmtVs(r.rss_vs_base),
    ];
  });
}

const STEADY_HEADER = [
  "contender",
  "rate records/s",
  "records",
  "p50 ms",
  "p99 ms",
  "max ms",
  "p99 after 2 s",
  "max after 2 s",
  "CPU-s per 1k",
  "peak RSS MB",
];

function steadyRows(rows) {
  return rows
    .filter((r) => r.scenario === "steady")
    .map((r) => [
      shortLabel(r.contender),
      fmtInt(r.steady_rate),
      `${fmtInt(r.delivered)}/${fmtInt(r.expected)}`,
      fmtNum(r.latency?.p50_ms, 1),
      fmtNum(r.latency?.p99_ms, 1),
      fmtNum(r.latency?.max_ms, 1),
      fmtNum(r.latency?.p99_after_2s_ms, 1),
      fmtNum(r.latency?.max_after_2s_ms, 1),
      fmtNum(r.cpu_s_per_1k, 3),
      fmtNum(r.peak_rss_mb, 0),
    ]);
}

const TRACING_HEADER = [
  "scenario",
  "fan-out",
  "tracing",
  "records/s",
  "× off rate",
  "CPU-s per 1k",
  "Δ CPU-s per 1k vs off",
  "× off CPU",
  "peak RSS MB",
  "OTLP requests",
  "spans",
  "OTLP KiB",
];

const tracingName = (r) => (r.contender === "sidecar" ? "off" : (r.tracing ?? r.contender.slice("sidecar ".length)));

/** The sidecar's rows when a run has tracing variants (`--tracing`): the cost of tracing. */
function tracingRows(rows) {
  if (!rows.some((r) => kindOf(r.contender) === "sidecar" && r.contender !== "sidecar")) return [];
  // The scale and replicas runs have no tracing variants.
  return rows
    .filter((r) => kindOf(r.contender) === "sidecar" && !isScaleOrReplicas(r))
    .map((r) => {
      const cpu = r.cpu_s_per_1k_median ?? r.cpu_s_per_1k;
      const cpuRange = r.reps > 1 && r.cpu_range ? ` (${fmtNum(r.cpu_range[0], 3)}–${fmtNum(r.cpu_range[1], 3)})` : "";
      const traced = r.contender !== "sidecar";
      return [
        r.scenario === "steady" ? "steady" : `receiver ${r.scenario}`,
        r.fanout ?? "–",
        tracingName(r),
        throughputCells(r)[0],
        r.rate_vs_off === undefined ? "–" : r.rate_vs_off.toFixed(2),
        `${fmtNum(cpu, 3)}${cpuRange}`,
        r.cpu_delta_vs_off === undefined ? "–" : `${r.cpu_delta_vs_off >= 0 ? "+" : ""}${r.cpu_delta_vs_off.toFixed(3)}`,
        r.cpu_vs_off === undefined ? "–" : r.cpu_vs_off.toFixed(2),
        fmtNum(r.peak_rss_mb, 0),
        traced ? fmtInt(r.otlp_requests) : "–",
        traced ? fmtInt(r.otlp_spans) : "–",
        traced && r.otlp_bytes !== undefined ? fmtInt(r.otlp_bytes / 1024) : "–",
      ];
    });
}

function textTable(header, body) {
  const widths = header.map((h, i) => Math.max(String(h).length, ...body.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

const mdTable = (header, body) =>
  [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...body.map((r) => `| ${r.join(" | ")} |`)].join("\n");

export function renderTable(rows, meta) {
  const parts = [textTable(MAIN_HEADER, mainRows(rows))];
  if (rows.some((r) => !r.complete && r.scenario !== "steady"))
    parts.push("* partial: stopped at its time window; the rate is over what arrived");
  const steady = steadyRows(rows);
  if (steady.length > 0)
    parts.push("", "steady rate, produce-to-receipt latency (first seconds included):", textTable(STEADY_HEADER, steady));
  const scale = scaleRows(rows);
  if (scale.length > 0)
    parts.push(
      "",
      "scale and replicas (receiver 0 ms, fan-out 1; replicas: CPU summed over the processes, peak RSS the largest; × base: against the first row):",
      textTable(SCALE_HEADER, scale),
    );
  const tracing = tracingRows(rows);
  if (tracing.length > 0)
    parts.push(
      "",
      "cost of tracing (sidecar; CPU-s per 1k: median over repeats, range in brackets; OTLP: the sink's count incl. the shutdown flush):",
      textTable(TRACING_HEADER, tracing),
    );
  parts.push("", "against the targets (the plain sidecar, tracing off):", textTable(TARGET_HEADER, targetRows(rows, meta)));
  return parts.join("\n");
}

const TARGET_HEADER = ["target", "this run", ""];

/** Where a row comes from, in a few words (for the worst-of targets). */
function rowName(r) {
  if (r.scenario === "steady") return "steady run";
  if (r.scenario === "scale") return "scale run";
  if (r.scenario === "replicas") return `replicas ×${r.replicas}`;
  return `receiver ${r.scenario}, fan-out ${r.fanout}`;
}

/**
 * Every target against this run's figures. A target whose figures this run lacks (its scenario or
 * contender did not run, or failed) is "not run".
 */
function targetRows(rows, meta) {
  const find = (scenario, contender, fanout = null) =>
    rows.find((r) => r.scenario === scenario && r.contender === contender && r.fanout === fanout);
  const kafka = find("kafka", "kafka");
  const http0 = find("0ms", "http");
  const s0 = find("0ms", "sidecar", 1);
  const loop0 = find("0ms", "loop", 1);
  const s20 = find("20ms", "sidecar", 1);
  const loop20 = find("20ms", "loop", 1);
  const steady = find("steady", "sidecar", 1);
  const scale = find("scale", "sidecar", 1);
  const replicas = rows.filter((r) => r.scenario === "replicas" && r.contender === "sidecar");
  const o = meta.options;
  const out = [];
  // `figure` undefined: nothing to judge. `verdict`: true (met), false (missed) or a word of its own.
  const add = (target, figure, verdict) =>
    out.push([target, figure ?? "–", figure === undefined ? "not run" : verdict === true ? "met" : verdict === false ? "missed" : verdict]);
  const vsLoop = (row, loop) =>
    `${fmtRatio(row.vs_loop)} (${fmtInt(row.deliveries_per_s)} vs ${fmtInt(loop.deliveries_per_s)} deliveries/s)`;

  add(
    "receiver 0 ms, fan-out 1, defaults: ≥ 2.0 × the hand-written loop, from the first delivery",
    s0?.vs_loop === undefined ? undefined : vsLoop(s0, loop0),
    s0?.vs_loop >= 2,
  );
  add(
    "receiver 0 ms, fan-out 1, defaults: ≥ 2.0 × the hand-written loop, from process start",
    s0?.vs_loop_from_start === undefined
      ? undefined
      : `${fmtRatio(s0.vs_loop_from_start)} (${fmtInt(s0.records_per_s_from_start)} vs ${fmtInt(loop0.records_per_s_from_start)} records/s)`,
    s0?.vs_loop_from_start >= 2,
  );
  add(
    "receiver 0 ms, fan-out 1: ≥ 0.5 × the lower ceiling",
    s0?.vs_lower_ceiling === undefined
      ? undefined
      : `${s0.vs_lower_ceiling.toFixed(2)} (${SHORT_LABEL[s0.lower_ceiling]}: ${fmtInt(s0.lower_ceiling_records_per_s)} records/s)`,
    s0?.vs_lower_ceiling >= 0.5,
  );
  add(
    "receiver 0 ms, fan-out 1: first delivery ≤ 1.0 s after process start, empty group",
    s0?.startup_s === undefined
      ? undefined
      : `${fmtNum(s0.startup_s, 2)} s (hand-written loop: ${loop0?.startup_s === undefined ? "not run" : `${fmtNum(loop0.startup_s, 2)} s`})`,
    s0?.startup_s <= 1,
  );
  // The bare parts: what a bare Kafka consumer and a bare HTTP client spend on the same records.
  for (const [key, limit, when] of [
    ["cpu_s_per_1k", 1.5, "in the delivery window"],
    ["cpu_s_per_1k_total", 2, "including start-up"],
  ]) {
    const bare = kafka?.[key] !== undefined && http0?.[key] !== undefined ? kafka[key] + http0[key] : undefined;
    const ratio = s0?.[key] !== undefined && bare > 0 ? s0[key] / bare : undefined;
    add(
      `CPU per 1,000 deliveries ≤ ${limit} × the bare parts (Kafka ceiling + HTTP ceiling at 0 ms), ${when}`,
      ratio === undefined
        ? undefined
        : `${ratio.toFixed(2)} × (${fmtNum(s0[key], 3)} CPU-s; bare parts ${fmtNum(bare, 3)} = ${fmtNum(kafka[key], 3)} + ${fmtNum(http0[key], 3)})`,
      ratio <= limit,
    );
  }
  const worst = rows
    .filter((r) => r.contender === "sidecar" && r.peak_rss_mb !== undefined)
    .reduce((w, r) => (w === undefined || r.peak_rss_mb > w.peak_rss_mb ? r : w), undefined);
  add(
    "peak RSS ≤ 150 MB at full speed, no node flags (worst sidecar row, steady, scale and replicas included)",
    worst === undefined
      ? undefined
      : `${fmtNum(worst.peak_rss_mb, 0)} MB (${rowName(worst)}), ${o.sidecar_node_args ? `node flags ${o.sidecar_node_args}` : "no node flags"}`,
    o.sidecar_node_args ? "not comparable" : worst?.peak_rss_mb <= 150,
  );
  add(
    "steady at half the top rate: p99 ≤ 50 ms, the first seconds included",
    steady?.latency?.p99_ms === undefined ? undefined : `${fmtNum(steady.latency.p99_ms, 1)} ms at ${fmtInt(steady.steady_rate)} records/s`,
    steady?.latency?.p99_ms <= 50,
  );
  add(
    "receiver 20 ms, fan-out 1: ≥ 20 × the hand-written loop",
    s20?.vs_loop === undefined ? undefined : vsLoop(s20, loop20),
    s20?.vs_loop >= 20,
  );
  add(
    `${fmtInt(scale?.records ?? o.scale_records ?? 200_000)} records: peak RSS and CPU per 1k within 10% of the ${fmtInt(o.records)}-record run`,
    scale?.cpu_vs_base === undefined
      ? undefined
      : `RSS ${scale.rss_vs_base.toFixed(2)} × (${fmtNum(scale.peak_rss_mb, 0)} vs ${fmtNum(s0.peak_rss_mb, 0)} MB), CPU ${scale.cpu_vs_base.toFixed(2)} × (${fmtNum(scale.cpu_s_per_1k, 3)} vs ${fmtNum(s0.cpu_s_per_1k, 3)} CPU-s)`,
    scale?.rss_vs_base <= 1.1 && scale?.cpu_vs_base <= 1.1,
  );
  const perCount = (f) => (replicas.length === 0 ? undefined : replicas.map((r) => `×${r.replicas}: ${f(r)}`).join(", "));
  add(
    "replicas: 0 duplicates, every record delivered",
    perCount((r) => `${fmtInt(r.duplicates)}${r.complete ? "" : " (incomplete)"}`),
    replicas.every((r) => r.duplicates === 0 && r.complete),
  );
  add(
    "replicas: CPU per 1k within 10% of one process",
    s0 && replicas.length > 0
      ? `${perCount((r) => `${r.cpu_vs_base.toFixed(2)} × (${fmtNum(r.cpu_s_per_1k, 3)} CPU-s)`)}; one process ${fmtNum(s0.cpu_s_per_1k, 3)}`
      : undefined,
    replicas.every((r) => r.cpu_vs_base <= 1.1),
  );
  return out;
}

export function renderMarkdown(rows, meta, svgFile) {
  const o = meta.options;
  const partial = rows.some((r) => !r.complete && r.scenario !== "steady");
  const scaleRun = rows.find((r) => r.scenario === "scale");
  const replicaRun = rows.find((r) => r.scenario === "replicas");
  const lines = [
    "# Benchmarks",
    "",
    "<!-- Generated by scripts/bench.mjs (npm run bench -- --docs); edit the generator, not this file. -->",
    "",
  ];
  if (o.note) lines.push(`> **Note:** ${o.note}`, "");
  lines.push(
    `Run \`${meta.run}\` on ${meta.date.slice(0, 10)}, commit \`${meta.commit}\`${meta.src_dirty ? " (with uncommitted changes in src/)" : ""}.`,
    "",
    "```sh",
    meta.command,
    "```",
    "",
    "## Machine and versions",
    "",
    `- ${meta.nproc} CPUs (${meta.cpu_model}), ${meta.memory_gb} GB memory, Linux ${meta.kernel}`,
    `- load average (1/5/15 min) at the start ${meta.load_start.join(" / ")}, at the end ${meta.load_end?.join(" / ") ?? "–"}`,
    `- Node ${meta.node}, Apache Kafka ${meta.kafka ?? "(external cluster)"} (KRaft, one node, on the same machine), kafkajs ${meta.kafkajs}, undici ${meta.undici}, callback-sidecar ${meta.sidecar}`,
    ...(o.sidecar_cli ? [`- sidecar run from \`${o.sidecar_cli}\` (not this checkout's dist/)`] : []),
    ...(o.sidecar_node_args ? [`- sidecar node flags: \`${o.sidecar_node_args}\``] : []),
    `- data: ${fmtInt(o.records)} records of ${meta.value_bytes} bytes of JSON on a ${o.partitions}-partition topic, headers \`x-tenant-id\` and \`x-event-type\`${scaleRun ? `; the scale run: ${fmtInt(scaleRun.records)} such records on a ${scaleRun.partitions}-partition topic of its own` : ""}${replicaRun ? `; the replicas run: ${fmtInt(replicaRun.records)} on a ${replicaRun.partitions}-partition topic of its own` : ""}`,
    "",
    "## Throughput, CPU and memory",
    "",
    mdTable(MAIN_HEADER, mainRows(rows)),
    "",
  );
  if (partial)
    lines.push("\\* partial: stopped at its time window (see `--slow-window-seconds`); the rate is over the deliveries that arrived.", "");
  lines.push(
    "- **records/s** and **deliveries/s**: from the first to the last receipt at the receiver (the Kafka ceiling: first to last message consumed); start-up and group join are outside that window. For the HTTP ceiling, one POST counts as one record.",
    "- **records/s from start**: the same records over the time from spawning the process to the last receipt, so module loading, connecting and the group join count too (for the HTTP ceiling, pre-signing the bodies). **first delivery s**: from spawning the process to the first receipt at the receiver (the Kafka ceiling: its first message); every contender starts on a group of its own, with no committed offsets.",
    "- **CPU-s per 1k**: the contender process's utime + stime from `/proc/<pid>/stat`, from the first delivery to the end, per 1,000 deliveries (records for the Kafka ceiling). *incl. start-up* counts from process start (module loading, connecting, group join; for the HTTP ceiling also pre-signing the bodies).",
    "- **peak RSS**: `VmHWM` from `/proc/<pid>/status`, read just before the process is stopped.",
    "- **lower ceiling** (records/s): min(Kafka ceiling, HTTP ceiling at the same receiver delay ÷ fan-out); the ratio says which one bounds it. **× loop**: the sidecar's deliveries/s over the loop's at the same delay and fan-out.",
    "",
  );
  const steady = steadyRows(rows);
  if (steady.length > 0) {
    lines.push(
      "## Latency at a steady rate",
      "",
      `Receiver at 0 ms, fan-out 1, a fresh topic and group per contender (the sidecar; the loop too if \`--steady-contenders\` names it). Records are produced at a fixed rate (half the sidecar's 0 ms fan-out 1 rate above, unless \`--steady-rate\` is given) for ${o.steady_seconds} s, starting as soon as the contender is ready (the sidecar's \`/readyz\` answers 200; the loop has joined its group). The producer is the benchmark's parent process. Latency is the receipt time at the receiver minus the record's scheduled produce time (\`sent_at_us\` in the payload), for every record, the first seconds included; *after 2 s* leaves out records scheduled in the first 2 s.`,
      "",
      mdTable(STEADY_HEADER, steady),
      "",
    );
  }
  const scale = scaleRows(rows);
  if (scale.length > 0) {
    lines.push(
      "## Scale and replicas",
      "",
      "The plain sidecar (tracing off), receiver at 0 ms, fan-out 1, each run on a topic of its own (see *How it is measured*). *base* is the sidecar's receiver 0ms, fan-out 1 row of the first table, which both runs are compared with (**× base**). **replicas**: the processes together; records/s from the first to the last receipt of any of them, CPU-s summed over them, peak RSS the largest of any one. **duplicates**: requests minus distinct delivery ids at the receiver (a record delivered again after a rebalance keeps its delivery id), the most of any repeat; **complete**: every repeat delivered every record.",
      "",
      mdTable(SCALE_HEADER, scale),
      "",
    );
  }
  const tracing = tracingRows(rows);
  if (tracing.length > 0) {
    lines.push(
      "## Cost of tracing",
      "",
      `The sidecar runs once per \`--tracing\` variant (${o.tracing ?? "–"}), each a contender of its own, interleaved with the others in every repetition. *off* is the plain \`callback-sidecar\` row above (\`pyfly.callbacks.tracing.enabled\` unset). *sampled-r* sets \`tracing: { enabled: true }\`, \`OTEL_TRACES_SAMPLER=traceidratio\` and \`OTEL_TRACES_SAMPLER_ARG=r\` (the records carry no \`traceparent\`, so the ratio decides alone), and \`OTEL_EXPORTER_OTLP_ENDPOINT\` of a local OTLP/HTTP sink (\`scripts/bench/otlp-sink.mjs\`, a process of its own, so decoding the exports is not charged to the sidecar); exporter and batch span processor keep the SDK defaults${
        o.otel_env
          ? ` except \`${Object.entries(o.otel_env)
              .map(([k, v]) => `${k}=${v}`)
              .join(" ")}\``
          : " (http/protobuf, 5 s schedule delay, batches of 512)"
      }.`,
      "",
      mdTable(TRACING_HEADER, tracing),
      "",
      "- **CPU-s per 1k**: the median over the repeats (its range in brackets when `--repeat` > 1), measured as in the table above. **Δ** and **× off CPU**: against the *off* row of the same scenario and fan-out; **× off rate**: records/s against it.",
      "- **OTLP requests**, **spans**, **KiB**: what the sink received from that sidecar, including the batch processor's flush at shutdown (after CPU and RSS were read). A sampled-1 row with fewer spans than records × (1 + fan-out) lost spans to the batch processor's queue limit (2,048 by default).",
      "- Whether *off* costs anything against a build without tracing: run this benchmark with `--sidecar-cli` pointing at that build's `dist/cli/index.js` and compare the CPU-s per 1k of the two runs.",
      "",
    );
  }
  lines.push(
    "## Against the targets",
    "",
    "The plain sidecar (tracing off) with its default configuration, from the tables above; *not run*: this run has no figures for it.",
    "",
    mdTable(TARGET_HEADER, targetRows(rows, meta)),
    "",
  );
  lines.push(
    "## Chart",
    "",
    `![records/s per contender and scenario](${svgFile})`,
    "",
    "## How it is measured",
    "",
    "- `scripts/bench.mjs` starts a Kafka broker (`scripts/kafka.mjs`, temp data dir), creates the topic and produces the records once; every contender then reads that same topic from the beginning under a consumer group of its own. A throwaway group joins first, so creating `__consumer_offsets` is not charged to any contender.",
    "- Each contender is a separate child process; the receiver is another (`scripts/bench/receiver.mjs`: Node `http`, 204 after the delay, counting distinct `X-Pyfly-Delivery-Id` values). Broker, receiver and contender share the machine's cores.",
    "- Kafka ceiling (`scripts/bench/kafka-ceiling.mjs`): kafkajs `eachBatch`, no HTTP, until every record is read.",
    `- HTTP ceiling (\`scripts/bench/http-ceiling.mjs\`): an undici \`Agent\` with ${o.http_connections} connections and as many requests in flight, POSTing bodies canonicalised and HMAC-signed before the timed part.`,
    "- Hand-written loop (`scripts/bench/loop.mjs`): kafkajs `eachMessage` → `JSON.parse` → sorted-key stringify → HMAC-SHA256 → undici POST to each subscription in turn, awaited. At fan-out 3 it runs at 0 ms only; at a delayed receiver it is stopped after `--slow-window-seconds` (one request at a time: 20 ms each).",
    "- Sidecar: `node dist/cli/index.js run --config <temp application.yml>` (one tenant, `pyfly` signing, one or three subscriptions to the receiver, `from-beginning`, defaults otherwise, log level warn). It is measured until the receiver has seen every expected delivery; CPU and RSS are read just before it is stopped.",
    ...(scaleRun
      ? [
          `- Scale run: the sidecar as above (receiver at 0 ms, fan-out 1) on a topic of its own with ${fmtInt(scaleRun.records)} records (\`--scale-records\`; same payload size and partition count), produced once at the start; its time window (\`--window-seconds\`) and hard limit (\`--max-seconds\`) grow in proportion to the record count. It shows whether CPU and memory per record stay flat over a long run.`,
        ]
      : []),
    ...(replicaRun
      ? [
          `- Replicas run: a ${replicaRun.partitions}-partition topic (\`--replica-partitions\`) holding ${fmtInt(replicaRun.records)} records, produced once; for each count in \`--replicas\` (${[...new Set(rows.filter((r) => r.scenario === "replicas").map((r) => r.replicas))].join(", ")}), that many sidecars (receiver at 0 ms, fan-out 1) with the same generated configuration and group id, each its own admin port, are spawned in one go, join and rebalance together, and are measured together until the receiver has seen every record. Their CPU times are summed, their peak RSS is the largest of any one.`,
        ]
      : []),
    "- Every rate is given twice: from the first to the last delivery, and from process start (the moment the parent spawns the contender; the replicas are spawned together) to the last delivery. The second one charges start-up and the group join to the rate, as a short-lived or freshly scaled-out deployment sees it.",
    "- CPU is sampled (on every process of the contender) at the moment the parent learns of the first delivery (IPC from the receiver), so a few milliseconds of work may fall before the window. `/proc` CPU times have a 10 ms resolution.",
    `- Raw figures: one JSON line per measurement on stdout and in \`.cache/bench/${meta.run}.jsonl\` (the steady run adds latency per second of the schedule and the producer's own lag); each contender's output in \`.cache/bench/${meta.run}/\`.`,
    "",
    "## What can skew these figures",
    "",
    "- Broker, receiver, contender (and the producer in the steady run) share the same cores, and anything else running on the machine competes with them: see the load average above. `broker_cpu_s` and `receiver_cpu_s` in the JSON lines show what the other two spent during each measurement.",
    "- The HTTP ceiling is bounded by the single-threaded receiver as much as by undici; on 2 cores its 64 connections compete with the receiver for CPU.",
    "- Small runs (a few thousand records) mostly measure JIT warm-up and connection set-up; CPU times have a 10 ms resolution.",
    "- In the replicas run, all the sidecars share the same cores with the broker and the receiver: on a small machine more processes do not deliver faster; the run is about duplicates and CPU per delivery across rebalances, not speed-up. Its delivery window opens at the first delivery of any replica, so what the others still spend on starting and joining, and every rebalance, falls inside it.",
    "- In the steady run, latency counts from each record's *scheduled* produce time, so a producer that falls behind (its ack lag is in the JSON line) adds to the latency instead of hiding it.",
    "",
  );
  return lines.join("\n");
}

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Bars of records/s: one panel per receiver delay, one group per fan-out, one bar per contender. */
export function renderSvg(rows, meta) {
  const kafka = rows.find((r) => r.contender === "kafka");
  const scenarios = [...new Set(rows.filter((r) => /^\d+ms$/.test(r.scenario)).map((r) => r.scenario))];
  const panels = scenarios.map((scenario) => {
    const here = rows.filter((r) => r.scenario === scenario);
    const http = here.find((r) => r.contender === "http");
    const fanouts = [...new Set(here.filter((r) => r.fanout !== null).map((r) => r.fanout))].sort((a, b) => a - b);
    if (fanouts.length === 0) fanouts.push(1);
    const groups = fanouts.map((f) => {
      const bars = [];
      if (kafka) bars.push({ contender: "kafka", value: kafka.records_per_s, complete: true });
      if (http) bars.push({ contender: "http", value: http.deliveries_per_s / f, complete: http.complete });
      const loop = here.find((x) => x.contender === "loop" && x.fanout === f);
      if (loop) bars.push({ contender: "loop", value: loop.records_per_s, complete: loop.complete });
      for (const r of here.filter((x) => kindOf(x.contender) === "sidecar" && x.fanout === f))
        bars.push({ contender: r.contender, value: r.records_per_s, complete: r.complete });
      return { fanout: f, bars };
    });
    return { scenario, groups };
  });

  const barW = 30;
  const barGap = 6;
  const groupGap = 34;
  const panelPad = 56;
  const plotTop = 110;
  const plotH = 230;
  const plotBottom = plotTop + plotH;
  let x = 20;
  const parts = [];
  const variants = [...new Set(rows.map((r) => r.contender).filter((c) => kindOf(c) === "sidecar" && c !== "sidecar"))];
  const colorOf = (c) => COLOR[c] ?? VARIANT_COLORS[variants.indexOf(c) % VARIANT_COLORS.length];
  // One logarithmic scale for every panel: the ceilings and a loop at a 20 ms receiver differ by
  // three orders of magnitude.
  const values = panels.flatMap((p) => p.groups.flatMap((g) => g.bars.map((b) => b.value))).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...values, 10))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10) * 1.3));
  const y = (v) => plotBottom - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  for (const panel of panels) {
    const left = x + panelPad;
    const width = panel.groups.reduce((w, g) => w + g.bars.length * (barW + barGap) - barGap + groupGap, groupGap);
    parts.push(
      `<text x="${left + width / 2}" y="${plotTop - 14}" text-anchor="middle" font-weight="bold">receiver answers after ${panel.scenario.replace("ms", " ms")}</text>`,
    );
    for (let decade = lo; decade <= hi; decade *= 10) {
      parts.push(`<line x1="${left}" x2="${left + width}" y1="${y(decade)}" y2="${y(decade)}" stroke="#ccc"/>`);
      parts.push(
        `<text x="${left - 6}" y="${y(decade) + 4}" text-anchor="end" font-size="11" fill="#555">${decade >= 1000 ? `${decade / 1000}k` : decade}</text>`,
      );
      for (const m of [2, 5])
        if (decade * m < hi)
          parts.push(`<line x1="${left}" x2="${left + width}" y1="${y(decade * m)}" y2="${y(decade * m)}" stroke="#eee"/>`);
    }
    parts.push(`<line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotBottom}" stroke="#888"/>`);
    parts.push(
      `<text transform="translate(${x + 12},${plotTop + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="11" fill="#555">records/s (log scale)</text>`,
    );
    let gx = left + groupGap;
    for (const g of panel.groups) {
      const gw = g.bars.length * (barW + barGap) - barGap;
      for (const [i, b] of g.bars.entries()) {
        const bx = gx + i * (barW + barGap);
        const by = y(b.value);
        parts.push(
          `<rect x="${bx}" y="${by.toFixed(1)}" width="${barW}" height="${(plotBottom - by).toFixed(1)}" fill="${colorOf(b.contender)}"><title>${esc(shortLabel(b.contender))}: ${fmtInt(b.value)} records/s</title></rect>`,
        );
        parts.push(
          `<text x="${bx + barW / 2}" y="${(by - 4).toFixed(1)}" text-anchor="middle" font-size="10">${fmtK(b.value)}${b.complete ? "" : "*"}</text>`,
        );
      }
      parts.push(`<text x="${gx + gw / 2}" y="${plotBottom + 16}" text-anchor="middle" font-size="12">fan-out ${g.fanout}</text>`);
      gx += gw + groupGap;
    }
    parts.push(`<line x1="${left}" x2="${left + width}" y1="${plotBottom}" y2="${plotBottom}" stroke="#888"/>`);
    x = left + width + 10;
  }
  const totalW = Math.max(640, x + 10);
  const legend = [...Object.keys(SHORT_LABEL), ...variants]
    .map((c, i) => {
      // The four contenders on one line, the sidecar's tracing variants (if any) on a second.
      const lx = i < 4 ? 20 + i * 150 : 20 + (i - 4) * 200;
      const ly = i < 4 ? 62 : 80;
      return `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${colorOf(c)}"/><text x="${lx + 16}" y="${ly + 10}" font-size="12">${esc(shortLabel(c))}</text>`;
    })
    .join("");
  const o = meta.options;
  const subtitle = `${fmtInt(o.records)} records × ${meta.value_bytes} B on ${o.partitions} partitions · ${meta.nproc} CPUs (${meta.cpu_model}) · Node ${meta.node} · Kafka ${meta.kafka ?? "external"} · ${meta.date.slice(0, 10)}`;
  const footer =
    "Log scale. HTTP ceiling shown as deliveries/s ÷ fan-out; Kafka ceiling does not depend on the receiver.  * partial (time window)";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${totalW}" height="${plotBottom + 62}" viewBox="0 0 ${totalW} ${plotBottom + 62}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="26" font-size="16" font-weight="bold">callback-sidecar side-by-side benchmark: records/s (higher is better)</text>
<text x="20" y="46" font-size="11" fill="#555">${esc(subtitle)}</text>
${legend}
${parts.join("\n")}
<text x="20" y="${plotBottom + 48}" font-size="10" fill="#777">${esc(footer)}</text>
</svg>
`;
}
