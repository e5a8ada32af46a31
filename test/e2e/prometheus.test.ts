/**
 * A real Prometheus (Debian's `prometheus` package, installed with apt-get where the tests run as
 * root and it is missing) scrapes the BUILT sidecar on the real broker, with the alert rules of
 * deploy/prometheus loaded (every `for:` cut to 0s). One receiver answers, one refuses connections
 * (its breaker opens and its deliveries are dead-lettered), one sits behind a CONNECT proxy that
 * refuses; some records match no subscription and some are left out by a payload filter. The
 * breaker-open and dead-letter alerts fire, every rule evaluates without error, and every panel
 * query of the Grafana dashboard returns a series with a value; the panels checked are printed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Admin, Producer } from "kafkajs";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/cli.js";
import { startConnectProxy } from "../support/connect-proxy.js";
import { e2eSuite } from "../support/e2e-suite.js";
import {
  alertRules,
  cannotInstallPrometheus,
  dashboardQueries,
  findPrometheus,
  INSTALL_HINT,
  installPrometheus,
  PrometheusProcess,
  substituteVariables,
  withoutForDurations,
  type PromSample,
} from "../support/prometheus.js";
import { refusedPort } from "../support/receiver.js";
import { callbackConfig, SidecarProcess, sidecarConfig } from "../support/sidecar-process.js";
import { scenario, sleep, startRecordingReceiver, waitFor } from "../support/traffic.js";

const RULES = join(ROOT, "deploy/prometheus/callback-sidecar.rules.yaml");
const DASHBOARD = join(ROOT, "deploy/grafana/callback-sidecar-dashboard.json");
const SECRET = "e2e-prometheus-pyfly-secret-3f8e";
// The labels the Prometheus Operator / Kubernetes SD would add; the rules and the dashboard select on them.
const NAMESPACE = "e2e-callbacks";
const POD = "callback-sidecar-7d9f-0";

// Decided when the file is collected: skip only where the binary is missing and cannot be installed.
const found = findPrometheus();
const blocker = found === undefined ? cannotInstallPrometheus() : undefined;
const skipMessage = `no prometheus binary (PATH, /usr/bin/prometheus) and it cannot be installed here (${blocker ?? ""}): ${INSTALL_HINT}`;
if (blocker !== undefined) console.warn(`test/e2e/prometheus.test.ts skipped: ${skipMessage}`);

const describeWithPrometheus = blocker === undefined ? describe : describe.skip;

describeWithPrometheus(
  blocker === undefined ? "a real Prometheus scraping the built sidecar" : `real Prometheus: skipped, ${skipMessage}`,
  () => {
    const e2e = e2eSuite("e2e-prometheus");
    const { brokers, track } = e2e;
    let admin: Admin;
    let producer: Producer;
    let binary: string;
    beforeAll(() => void ({ admin, producer } = e2e));
    beforeAll(() => {
      if (found !== undefined) {
        binary = found;
        return;
      }
      console.log("prometheus is not installed: apt-get install prometheus (as scripts/check-deploy.sh does)");
      const started = Date.now();
      binary = installPrometheus();
      console.log(`installed ${binary} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }, 900_000);

    it("the breaker-open and dead-letter alerts fire for a refusing receiver, and every dashboard panel's query returns data", async () => {
      const testStarted = Date.now();
      const rulesText = readFileSync(RULES, "utf8");
      const rules = alertRules(rulesText);
      // The two alerts, found by what they watch (so a rename is followed, not silently missed).
      const breakerAlert = rules.find((r) => r.expr.includes("callbacks_circuit_breaker_state"))?.alert;
      const deadLetterAlert = rules.find((r) => r.expr.includes("callbacks_dead_letters_total"))?.alert;
      // Fires (with for: 0s) on the evaluations before the first scrape; must clear once the sidecar is scraped.
      const absentAlert = rules.find((r) => r.expr.includes("absent("))?.alert;
      expect(breakerAlert, `an alert on callbacks_circuit_breaker_state in ${RULES}`).toBeDefined();
      expect(deadLetterAlert, `an alert on callbacks_dead_letters_total in ${RULES}`).toBeDefined();

      const healthy = track(await startRecordingReceiver());
      // 410 Gone is final: each delivery to it ends FAILED at once and is dead-lettered.
      const gone = track(await startRecordingReceiver({ status: 410 }));
      const refused = await refusedPort();
      // The proxy answers every CONNECT with a 502 of its own: its target is never dialled.
      const proxy = track(await startConnectProxy());
      proxy.refuseWith = 502;
      const proxiedPort = await refusedPort();
      const refusedHost = `127.0.0.1:${refused}`;

      const { topic, setup } = await scenario(admin, brokers, "prometheus", { partitions: 2 });
      const sidecar = SidecarProcess.start(
        "prometheus",
        sidecarConfig({
          ...setup,
          callbacks: {
            http: {
              // Two refused connections open the breaker; after 3 s one probe goes through, is refused,
              // and opens it again (so globex's deliveries also run out of attempts).
              "circuit-breaker": { "failure-threshold": 2, "recovery-timeout": "3s" },
              // Only initech's target goes through the (refusing) proxy.
              proxy: { url: proxy.url, "no-proxy": [`127.0.0.1:${healthy.port}`, `127.0.0.1:${gone.port}`, refusedHost] },
            },
          },
          configs: [
            callbackConfig("acme", "healthy", SECRET, [], {
              "max-attempts": 2,
              "backoff-ms": 100,
              subscriptions: [
                { "event-type": "OrderPlaced", "target-url": `${healthy.url}/acme` },
                // Half of acme's records are left out by this filter (callbacks_deliveries_filtered_total).
                { "event-type": "OrderPlaced", "target-url": `${healthy.url}/acme-large`, filter: { "payload.large": true } },
              ],
            }),
            // A 1 s backoff is more than the in-process budget (200ms): the second attempt waits in the retry topic.
            callbackConfig("globex", "refusing", SECRET, [{ eventType: "OrderPlaced", url: `http://${refusedHost}/hook` }], {
              "max-attempts": 2,
              "backoff-ms": 1000,
            }),
            callbackConfig("hooli", "gone", SECRET, [{ eventType: "OrderPlaced", url: `${gone.url}/hook` }], {
              "max-attempts": 2,
              "backoff-ms": 100,
            }),
            callbackConfig("initech", "proxied", SECRET, [{ eventType: "OrderPlaced", url: `http://127.0.0.1:${proxiedPort}/hook` }], {
              "max-attempts": 2,
              "backoff-ms": 100,
            }),
          ],
        }),
      );
      await sidecar.waitReady(90_000);
      const adminPort = await sidecar.adminPort();

      const prometheus = await PrometheusProcess.start(binary, {
        targets: [{ address: `127.0.0.1:${adminPort}`, labels: { namespace: NAMESPACE, pod: POD } }],
        rules: withoutForDurations(rulesText),
        intervalSeconds: 1,
      });

      // Traffic until the checks are done: every second, per tenant, records that are delivered,
      // filtered, refused (connection, 410), proxied, and one that no subscription wants.
      let producing = true;
      let batches = 0;
      let produceError: unknown;
      const traffic = (async () => {
        while (producing) {
          const n = batches;
          const record = (tenant: string, eventType: string, id: string, extra: Record<string, unknown> = {}) => ({
            key: id,
            value: JSON.stringify({ id, seq: n, ...extra }),
            headers: { "x-tenant-id": tenant, "x-event-type": eventType },
          });
          await producer.send({
            topic: topic.name,
            acks: -1,
            messages: [
              record("acme", "OrderPlaced", `acme-${n}-a`, { large: true }),
              record("acme", "OrderPlaced", `acme-${n}-b`, { large: false }),
              record("globex", "OrderPlaced", `globex-${n}`),
              record("hooli", "OrderPlaced", `hooli-${n}`),
              record("initech", "OrderPlaced", `initech-${n}`),
              record("acme", "InvoiceVoided", `unrouted-${n}`),
            ],
          });
          batches += 1;
          await sleep(1_000);
        }
      })().catch((error: unknown) => {
        produceError = error;
      });

      const fired = new Map<string, Record<string, string>[]>();
      try {
        // The sidecar is scraped, with our labels.
        let lastTargets = "";
        await waitFor(
          () => `prometheus to scrape the sidecar (targets: ${lastTargets})\n${prometheus.tail()}`,
          async () => {
            const targets = await prometheus.targets();
            lastTargets = JSON.stringify(targets.map((t) => ({ url: t.scrapeUrl, health: t.health, error: t.lastError })));
            return targets.some((t) => t.health === "up" && t.labels.namespace === NAMESPACE && t.labels.pod === POD);
          },
          60_000,
          500,
        );

        // The alerts: polled (an alert may resolve between two polls, so every firing one seen is kept)
        // until the breaker alert names the refusing host and the dead-letter alert the 410 tenant.
        const firing = (name: string | undefined, label: string, value: string) =>
          (fired.get(name ?? "") ?? []).some((l) => l[label] === value);
        await waitFor(
          () =>
            `${breakerAlert} for ${refusedHost} and ${deadLetterAlert} for hooli firing (firing so far: ${
              [...fired.keys()].join(", ") || "none"
            }; ${batches} batches produced${produceError ? `, produce error: ${String(produceError)}` : ""})\n${sidecar.tail(10)}\n${prometheus.tail(10)}`,
          async () => {
            for (const a of await prometheus.alerts()) {
              if (a.state !== "firing") continue;
              const name = a.labels.alertname ?? "?";
              fired.set(name, [...(fired.get(name) ?? []), a.labels]);
            }
            return firing(breakerAlert, "target_host", refusedHost) && firing(deadLetterAlert, "tenant", "hooli");
          },
          90_000,
          1_000,
        );
        const breakerFiring = fired.get(breakerAlert as string) ?? [];
        const deadLetterFiring = fired.get(deadLetterAlert as string) ?? [];
        // The refusing host's breaker, nobody else's; in our namespace and pod.
        expect(new Set(breakerFiring.map((l) => l.target_host))).toEqual(new Set([refusedHost]));
        expect(breakerFiring.every((l) => l.namespace === NAMESPACE && l.pod === POD)).toBe(true);
        // Dead letters for the refusing (and the proxied) tenants, never for the healthy one.
        expect(new Set(deadLetterFiring.map((l) => l.tenant)).has("acme")).toBe(false);
        expect(deadLetterFiring.every((l) => l.namespace === NAMESPACE)).toBe(true);

        // Every panel query, with the dashboard's variables set to the scrape's labels.
        const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Parameters<typeof dashboardQueries>[0];
        const queries = dashboardQueries(dashboard);
        expect(queries.length).toBeGreaterThan(0);
        const variables = {
          namespace: NAMESPACE,
          pod: POD,
          datasource: "prometheus",
          // Grafana's $__rate_interval is at least 4 scrape intervals; a minute holds ~60 samples here.
          __rate_interval: "1m",
          __interval: "15s",
          __interval_ms: "15000",
          __range: "5m",
          __range_s: "300",
          __range_ms: "300000",
        };
        const results = new Map<string, { expr: string; samples: PromSample[]; error?: string }>();
        const key = (q: (typeof queries)[number]) => `#${q.panelId ?? "?"} ${q.panel} [${q.refId}]`;
        // Substituted up front: a dashboard variable the test has no value for fails here, by name.
        const exprs = new Map(queries.map((q) => [key(q), substituteVariables(q.expr, variables)]));
        const hasValue = (samples: PromSample[]) => samples.some((s) => Number.isFinite(Number(s.value[1])));
        await waitFor(
          () => {
            const missing = queries.filter((q) => !hasValue(results.get(key(q))?.samples ?? []));
            return `a value for every panel query; still without one:\n${missing
              .map(
                (q) =>
                  `  ${key(q)}: ${results.get(key(q))?.error ?? JSON.stringify(results.get(key(q))?.samples ?? [])} <- ${results.get(key(q))?.expr ?? q.expr}`,
              )
              .join("\n")}`;
          },
          async () => {
            for (const q of queries) {
              if (hasValue(results.get(key(q))?.samples ?? [])) continue;
              const expr = exprs.get(key(q)) as string;
              try {
                results.set(key(q), { expr, samples: await prometheus.query(expr) });
              } catch (error) {
                results.set(key(q), { expr, samples: [], error: String(error) });
              }
            }
            return queries.every((q) => hasValue(results.get(key(q))?.samples ?? []));
          },
          90_000,
          1_000,
        );

        // The metrics-absent alert is not active while the sidecar is scraped.
        let active: string[] = [];
        await waitFor(
          () => `${absentAlert ?? "(no absent() alert)"} to clear (active: ${active.join(", ")})`,
          async () => {
            active = (await prometheus.alerts()).map((a) => `${a.labels.alertname ?? "?"}:${a.state}`);
            return !active.some((a) => a.startsWith(`${absentAlert}:`));
          },
          30_000,
          1_000,
        );

        // Every rule evaluates against the real series without an error.
        const ruleHealth = (await prometheus.rules()).flatMap((g) => g.rules);
        expect(ruleHealth.map((r) => r.name).sort()).toEqual(rules.map((r) => r.alert).sort());
        expect(ruleHealth.filter((r) => r.health === "err").map((r) => `${r.name}: ${r.lastError ?? ""}`)).toEqual([]);

        const show = (s: PromSample) => {
          const labels = Object.entries(s.metric)
            .map(([k, v]) => `${k}=${v}`)
            .join(",");
          const value = Number(s.value[1]);
          return `{${labels}} ${Number.isInteger(value) ? value : value.toPrecision(3)}`;
        };
        const lines = queries.map((q) => {
          const r = results.get(key(q));
          const samples = r?.samples ?? [];
          return `  ok  ${key(q).padEnd(48)} ${samples.length} series: ${samples.slice(0, 3).map(show).join("; ")}${samples.length > 3 ? "; ..." : ""}`;
        });
        console.log(
          [
            `PROMETHEUS ${binary} scraped 127.0.0.1:${adminPort} as namespace=${NAMESPACE} pod=${POD}, rules from ${RULES} with for: 0s`,
            `alerts seen firing: ${[...fired.keys()].sort().join(", ")}${
              absentAlert && fired.has(absentAlert) ? ` (${absentAlert} only before the first scrape; cleared)` : ""
            }`,
            `alerts active at the end: ${[...new Set(active)].join(", ")}`,
            `  ${breakerAlert}: ${[...new Set(breakerFiring.map((l) => l.target_host))].join(", ")}`,
            `  ${deadLetterAlert}: ${[...new Set(deadLetterFiring.map((l) => `${l.tenant}/${l.reason}`))].join(", ")}`,
            `rules evaluated: ${ruleHealth.length}, all health ok`,
            `dashboard panel queries checked (${queries.length} queries, ${new Set(queries.map((q) => q.panel)).size} panels), each with a series:`,
            ...lines,
            `traffic: ${batches} batches of 6 records; healthy receiver got ${healthy.requests.length} requests, the 410 one ${gone.requests.length}; ${((Date.now() - testStarted) / 1000).toFixed(1)} s`,
          ].join("\n"),
        );
        expect(healthy.requests.length).toBeGreaterThan(0);
        expect(produceError).toBeUndefined();
      } finally {
        producing = false;
        await traffic;
        await prometheus.stop();
      }
      // Prometheus is gone once stopped.
      await expect(fetch(`${prometheus.url}/-/ready`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    }, 360_000);
  },
);
