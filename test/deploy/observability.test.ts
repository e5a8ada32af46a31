import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { exportedSeriesNames } from "./lib/metrics-source.js";
import { fromGrafana, metricNames } from "./lib/promql.js";
import { find, REPO, render, toolsMissing } from "./lib/render.js";

type Rules = { groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[] };
type Panel = { title: string; type: string; datasource?: { uid: string }; targets?: { expr: string }[]; panels?: Panel[] };
type Dashboard = {
  uid: string;
  panels: Panel[];
  links?: { title: string; type: string; url?: string }[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
};

const RULES_FILE = join(REPO, "deploy/prometheus/callback-sidecar.rules.yaml");
const DASHBOARD_FILE = join(REPO, "deploy/grafana/callback-sidecar-dashboard.json");
// Series Prometheus makes itself, not the sidecar.
const PROMETHEUS_OWN = new Set(["up", "ALERTS", "ALERTS_FOR_STATE"]);

const rulesFile = () => parse(readFileSync(RULES_FILE, "utf8")) as Rules;
const dashboard = () => JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
const flatPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...flatPanels(p.panels ?? [])]);

function dashboardExpressions(d: Dashboard): { where: string; expr: string }[] {
  const panels = flatPanels(d.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: fromGrafana(t.expr) })));
  const vars = d.templating.list
    .filter((v) => v.type === "query")
    .map((v) => ({ where: `variable $${v.name}`, expr: fromGrafana(typeof v.query === "string" ? v.query : (v.query?.query ?? "")) }));
  return [...panels, ...vars];
}

const ruleExpressions = (rules: Rules, source: string) =>
  rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `${source} ${r.alert ?? r.record}`, expr: r.expr })));

function unknownMetrics(expressions: { where: string; expr: string }[], exported: Set<string>): string[] {
  return expressions.flatMap(({ where, expr }) => metricNames(expr).filter((m) => !exported.has(m) && !PROMETHEUS_OWN.has(m)).map((m) => `${where}: ${m}`));
}

describe("metric names in the dashboard and the alerts", () => {
  let exported: Set<string>;
  beforeAll(async () => {
    exported = await exportedSeriesNames();
  });

  it("reads the sidecar's registry, histograms with their series", () => {
    for (const name of ["callbacks_deliveries_total", "callbacks_delivery_duration_seconds_bucket", "callbacks_event_latency_seconds_count", "process_resident_memory_bytes"]) {
      expect(exported).toContain(name);
    }
  });

  it("finds metric names with the PromQL grammar, and would flag one that does not exist", () => {
    const expr = 'histogram_quantile(0.9, sum by (le, target_host) (rate(callbacks_delivery_duration_seconds_bucket{job=~"x"}[5m]))) / on (pod) group_left callbacks_nope';
    expect(metricNames(expr).sort()).toEqual(["callbacks_delivery_duration_seconds_bucket", "callbacks_nope"]);
    expect(unknownMetrics([{ where: "t", expr }], exported)).toEqual(["t: callbacks_nope"]);
    expect(metricNames('{__name__="callbacks_x"}')).toEqual(["callbacks_x"]);
    expect(() => metricNames("sum(rate(callbacks_deliveries_total[5m])")).toThrow(/syntax error/);
  });

  it("the dashboard queries only metrics the sidecar exports", () => {
    const expressions = dashboardExpressions(dashboard());
    expect(expressions.length).toBeGreaterThan(25);
    expect(unknownMetrics(expressions, exported)).toEqual([]);
  });

  it("the alert rules query only metrics the sidecar exports", () => {
    expect(unknownMetrics(ruleExpressions(rulesFile(), "deploy rules"), exported)).toEqual([]);
  });

  it.skipIf(toolsMissing)("the chart's PrometheusRule queries only metrics the sidecar exports", () => {
    const rule = find<{ spec: Rules }>(render({ values: ["ci/all-on-values.yaml"] }), "PrometheusRule");
    expect(unknownMetrics(ruleExpressions(rule.spec, "chart rule"), exported)).toEqual([]);
  });
});

describe("alerts and dashboard content", () => {
  it.skipIf(toolsMissing)("the chart renders exactly the rules in deploy/prometheus with default values", () => {
    const rule = find<{ spec: Rules }>(render({ set: ["prometheusRule.enabled=true"] }), "PrometheusRule");
    expect(rule.spec).toEqual(rulesFile());
  });

  it("alerts on an open breaker, failures, stopped consumption, skipped records, dead letters, refused hand-offs, retries piling up for hours, a failing egress proxy and receiver TLS files that do not reload", () => {
    const alerts = rulesFile().groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        "CallbackSidecarCircuitBreakerOpen",
        "CallbackSidecarHighFailureRatio",
        "CallbackSidecarConsumptionStopped",
        "CallbackSidecarSkippedRecordsRising",
        "CallbackSidecarDeadLettersRising",
        "CallbackSidecarHandoffRefused",
        "CallbackSidecarRetryBacklogGrowing",
        "CallbackSidecarProxyFailing",
        "CallbackSidecarTlsReloadFailing",
      ]),
    );
  });

  it("the dashboard has the panels operators look for, all on the datasource variable", () => {
    const d = dashboard();
    const panels = flatPanels(d.panels).filter((p) => p.type !== "row");
    const titles = panels.map((p) => p.title);
    for (const t of [
      "Delivery rate by status",
      "Failure ratio by tenant",
      "Attempt latency percentiles",
      "Event latency percentiles",
      "Circuit breaker state per host",
      "In flight and paused",
      "Skipped records by reason",
      "Dead letters by tenant and reason",
      "Proxy errors by reason",
      "Filtered deliveries by tenant",
    ]) {
      expect(titles).toContain(t);
    }
    for (const p of panels) expect(p.datasource?.uid, p.title).toBe("${datasource}");
    expect(new Set(titles).size).toBe(titles.length);
    expect(d.templating.list.map((v) => v.name)).toEqual(["datasource", "namespace", "pod"]);
  });

  it("links to the sidecar's traces in Explore: a valid Tempo search on the resource attributes the chart sets, the dashboard's filters and time range", () => {
    const d = dashboard();
    const links = (d.links ?? []).filter((l) => l.url?.startsWith("/explore?"));
    expect(links.map((l) => l.title)).toEqual(["Traces (Tempo)"]);
    const url = new URL(links[0]!.url!, "https://grafana.example");
    // Only the dashboard's own variables and Grafana's built-in time range.
    const used = [...links[0]!.url!.matchAll(/\$\{(\w+)(?::\w+)?\}/g)].map(([, v]) => v!);
    expect(new Set(used)).toEqual(new Set(["namespace", "pod", "__from", "__to"]));
    // What Grafana makes of it with the filters on All (their allValue) and a time range.
    const interpolated = links[0]!.url!.replace(/\$\{(namespace|pod):pipe\}/g, ".*").replace(/\$\{__(from|to)\}/g, "1700000000000");
    const panes = JSON.parse(new URL(interpolated, "https://grafana.example").searchParams.get("panes")!) as Record<
      string,
      { datasource: string; queries: { datasource: { type: string }; queryType: string; query: string }[]; range: { from: string; to: string } }
    >;
    expect(url.searchParams.get("schemaVersion")).toBe("1");
    const [pane] = Object.values(panes);
    expect(pane!.queries).toHaveLength(1);
    expect(pane!.queries[0]).toMatchObject({ datasource: { type: "tempo" }, queryType: "traceql" });
    expect(pane!.queries[0]!.query).toBe('{resource.k8s.container.name="callback-sidecar" && resource.k8s.namespace.name=~".*" && resource.k8s.pod.name=~".*"}');
    expect(pane!.range).toEqual({ from: "1700000000000", to: "1700000000000" });
  });
});
