/**
 * The security promises, end to end: the BUILT sidecar and CLI as child processes, a real broker, real
 * receivers on 127.0.0.1. Capability URLs never leave the process in clear, /executions is closed,
 * retry and dead-letter records are signed (a changed one is never delivered), weak Standard
 * Webhooks keys are refused, and Kubernetes service-link variables do not stop the pod.
 * docs/security.md names each test here next to the claim it checks.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Admin, Kafka, Producer } from "kafkajs";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redactUrl, subscriptionFingerprint } from "../../src/domain/subscription-ref.js";
import { handoffKeys } from "../../src/kafka/handoff-mac.js";
import { H, retryRecord, sealed, type DeliveryHandoff, type OutboundRecord } from "../../src/kafka/handoff-records.js";
import { e2eSuite } from "../support/e2e-suite.js";
import { runCli, type CliResult } from "../support/cli.js";
import { startReceiver, type Behaviour, type Receiver } from "../support/receiver.js";
import { MetricMap, SidecarProcess, sidecarConfig } from "../support/sidecar-process.js";
import { DELIVERY_ID, events, produce, readTopic, sleep, unique, waitFor, type ReadRecord, scenario } from "../support/traffic.js";

const e2e = e2eSuite("e2e-security");
const { brokers, track } = e2e;

const DEAD_LETTERS = "callbacks_dead_letters_total";

let kafka: Kafka;
let admin: Admin;
let producer: Producer;
let workDir: string;

beforeAll(() => {
  ({ kafka, admin, producer } = e2e);
  workDir = mkdtempSync(join(tmpdir(), "security-e2e-"));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function receiver(initial: Behaviour = { kind: "respond", status: 200 }): Promise<Receiver> {
  return track(await startReceiver(initial));
}

/** A fresh one-partition event topic, group, and retry and dead-letter topics of its own. */
const scenarioSetup = (prefix: string) => scenario(admin, brokers, prefix, { partitions: 1 });

/** Every record of `topic` up to its current end (a topic the sidecar never created reads as empty). */
async function readAll(topic: string, timeoutMs = 30_000): Promise<ReadRecord[]> {
  const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
  const count = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  if (count === 0) return [];
  const records = await readTopic(kafka, topic, count, timeoutMs);
  expect(records.length, `records read from ${topic}`).toBe(count);
  return records;
}

/** Key, value and every header name and value of each record, as text. */
const flatten = (records: ReadRecord[]) =>
  records.map((r) => [r.key ?? "", r.value?.toString("utf8") ?? "", ...Object.entries(r.headers).flat()].join("\n")).join("\n");

/** Scrapes /metrics until `check` holds. */
async function metricsWhen(
  sidecar: SidecarProcess,
  what: (m: MetricMap) => string,
  check: (m: MetricMap) => boolean,
  timeoutMs = 30_000,
): Promise<MetricMap> {
  let last = new MetricMap();
  await waitFor(
    () => `${sidecar.name}: ${what(last)}\n${sidecar.tail(10)}`,
    async () => {
      if (sidecar.exit) throw new Error(`${sidecar.name} exited`);
      last = await sidecar.metrics();
      return check(last);
    },
    timeoutMs,
    250,
  );
  return last;
}

async function adminGet(
  sidecar: SidecarProcess,
  path: string,
  authorization?: string,
): Promise<{ status: number; body: string; challenge: string | null }> {
  const port = await sidecar.adminPort();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: authorization ? { Authorization: authorization } : {},
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: await res.text(), challenge: res.headers.get("www-authenticate") };
}

function writeConfig(name: string, callbacks: Record<string, unknown>): string {
  const path = join(workDir, `${name}-${randomUUID().slice(0, 8)}.yml`);
  writeFileSync(path, stringify({ pyfly: { callbacks } }));
  return path;
}

interface ReplayOutput {
  lines: Record<string, unknown>[];
  summary: Record<string, number>;
}

function replayOutput(result: CliResult): ReplayOutput {
  const lines = result.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = lines.pop() as { summary?: Record<string, number> } | undefined;
  if (!last?.summary) throw new Error(`no replay summary\n${result.stdout}\n${result.stderr}`);
  return { lines, summary: last.summary };
}

/** `<label>-` and 24 random bytes in base64url: long enough for a pyfly secret, a token or a handoff key (32+ bytes). */
const randomSecret = (label: string) => `${label}-${randomBytes(24).toString("base64url")}`;

describe("capability URLs never leave the process in clear", () => {
  it("a target http://127.0.0.1:P/hooks/T0K3N-<r1>?token=<r2> answering 503 until attempts run out: neither random string in the retry or dead-letter topic, debug logs, /metrics, /executions or replay output; replay delivers to the full URL", async () => {
    const r1 = randomBytes(16).toString("hex");
    const r2 = randomBytes(16).toString("hex");
    const r = await receiver({ kind: "respond", status: 503 });
    const path = `/hooks/T0K3N-${r1}?token=${r2}`;
    const target = `${r.url}${path}`;
    const redacted = `${r.url}/\u2026`;
    expect(redactUrl(target)).toBe(redacted);

    const { topic, setup } = await scenarioSetup("sec-capability");
    const env = { ACME_SECRET: randomSecret("acme"), EXECUTIONS_TOKEN: randomSecret("executions") };
    const callbacks = sidecarConfig({
      ...setup,
      // backoff 300 ms > in-process budget 200 ms: the second attempt waits in the retry topic.
      configs: [
        {
          id: "sec-capability",
          "tenant-id": "acme",
          name: "orders",
          secret: "${ACME_SECRET}",
          "max-attempts": 3,
          "backoff-ms": 300,
          subscriptions: [{ "event-type": "OrderPlaced", "target-url": target }],
        },
      ],
      callbacks: {
        "log-level": "debug",
        server: { executions: { enabled: true, token: "${EXECUTIONS_TOKEN}", "include-payloads": true } },
      },
    });
    const sidecar = SidecarProcess.start("capability", callbacks, env);
    await sidecar.waitReady();
    const records = events(3, { prefix: `cap-${randomUUID().slice(0, 6)}`, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, records);
    await metricsWhen(
      sidecar,
      (m) => `3 dead letters (have ${m.sum(DEAD_LETTERS, { reason: "attempts_exhausted" })})`,
      (m) => m.sum(DEAD_LETTERS, { reason: "attempts_exhausted" }) >= 3,
      60_000,
    );
    // Every attempt went to the full URL: the token is the receiver's, it just must not leak from us.
    expect(r.requests).toHaveLength(9);
    for (const req of r.requests) expect(req.url).toBe(path);

    const outputs: Record<string, string> = {};
    const auth = `Bearer ${env.EXECUTIONS_TOKEN}`;
    for (const p of ["/executions?limit=1000", "/executions?status=FAILED", "/executions?tenant=acme", "/metrics", "/readyz", "/healthz"]) {
      const res = await adminGet(sidecar, p, auth);
      expect(res.status, p).toBe(200);
      outputs[`GET ${p}`] = res.body;
    }
    const executions = JSON.parse(outputs["GET /executions?limit=1000"] as string) as Record<string, unknown>[];
    expect(executions).toHaveLength(3);
    for (const e of executions) expect(e).toMatchObject({ status: "FAILED", attempts: 3, target_url: redacted, last_error: "HTTP 503" });
    expect(executions.every((e) => e.payload !== undefined)).toBe(true);

    const retries = await readAll(setup.retryTopic);
    expect(retries.length).toBeGreaterThanOrEqual(3);
    const dead = await readAll(setup.deadLetterTopic);
    expect(dead).toHaveLength(3);
    for (const rec of [...retries, ...dead]) {
      expect(rec.headers[H.target]).toBe(redacted);
      expect(rec.headers[H.subscription]).toBe(subscriptionFingerprint({ event_type: "OrderPlaced", target_url: target, headers: {} }));
      expect(rec.headers[H.mac]).toMatch(/^v1=/);
    }
    outputs["retry topic"] = flatten(retries);
    outputs["dead-letter topic"] = flatten(dead);

    sidecar.kill("SIGTERM");
    expect((await sidecar.waitExit(20_000)).code).toBe(0);
    outputs["run stdout"] = sidecar.stdout;
    outputs["run stderr"] = sidecar.stderr;

    const file = writeConfig("capability", callbacks);
    const dry = await runCli(["replay", "--dry-run", "--config", file], { env, timeoutMs: 60_000 });
    expect(dry.code, dry.stderr).toBe(0);
    const dryOut = replayOutput(dry);
    expect(dryOut.summary).toMatchObject({ read: 3, matched: 3, forged: 0, delivered: 0, failed: 0 });
    expect(dryOut.lines.filter((l) => l.dry_run === true).map((l) => l.target)).toEqual([redacted, redacted, redacted]);
    outputs["replay --dry-run stdout"] = dry.stdout;
    outputs["replay --dry-run stderr"] = dry.stderr;
    expect(r.requests).toHaveLength(9);

    // The receiver recovers; replay finds the subscription by its fingerprint and uses the full URL.
    r.behave({ kind: "respond", status: 200 });
    const replay = await runCli(["replay", "--config", file], { env, timeoutMs: 60_000 });
    expect(replay.code, replay.stderr).toBe(0);
    expect(replayOutput(replay).summary).toMatchObject({ read: 3, matched: 3, delivered: 3, failed: 0, forged: 0 });
    outputs["replay stdout"] = replay.stdout;
    outputs["replay stderr"] = replay.stderr;
    const replayed = r.requests.slice(9);
    expect(replayed).toHaveLength(3);
    for (const req of replayed) expect(req.url).toBe(path);
    expect(new Set(replayed.map((req) => String(req.headers[DELIVERY_ID])))).toEqual(new Set(dead.map((d) => d.headers[H.deliveryId])));

    const leaks: string[] = [];
    for (const [where, text] of Object.entries(outputs)) {
      for (const [what, secret] of Object.entries({ "path token": r1, "query token": r2, "path prefix": "T0K3N" }))
        if (text.includes(secret)) leaks.push(`${what} in ${where}`);
    }
    // The places that name the target at all name it redacted.
    for (const where of ["retry topic", "dead-letter topic", "GET /executions?limit=1000", "replay --dry-run stdout", "replay stdout"])
      expect(outputs[where], where).toContain(redacted);
    console.log(
      `capability URL: ${Object.keys(outputs).length} outputs searched (${Math.round(Object.values(outputs).reduce((n, t) => n + t.length, 0) / 1024)} KB; ` +
        `${retries.length} retry records, ${dead.length} dead letters, ${sidecar.logs().length} log lines of which ${sidecar.logs().filter((l) => l.level === 20).length} debug); leaks: ${leaks.length}`,
    );
    expect(leaks).toEqual([]);
  }, 150_000);
});

describe("/executions is closed", () => {
  it("enabled: 401 without the bearer token or with a wrong one, 200 with it; disabled (the default): 404 with or without it; /metrics, /healthz open", async () => {
    const r = await receiver();
    const { setup } = await scenarioSetup("sec-executions");
    const token = randomSecret("executions");
    const configs = [
      {
        "tenant-id": "acme",
        name: "orders",
        secret: randomSecret("acme"),
        subscriptions: [{ "event-type": "*", "target-url": `${r.url}/x` }],
      },
    ];
    const enabled = SidecarProcess.start(
      "executions-on",
      sidecarConfig({ ...setup, configs, callbacks: { server: { executions: { enabled: true, token: "${TOKEN}" } } } }),
      { TOKEN: token },
    );
    const disabled = SidecarProcess.start("executions-off", sidecarConfig({ ...setup, groupId: unique("sec-executions-off"), configs }), {
      TOKEN: token,
    });

    const none = await adminGet(enabled, "/executions");
    expect(none.status).toBe(401);
    expect(none.challenge).toBe('Bearer realm="callback-sidecar"');
    const wrong = await adminGet(enabled, "/executions", `Bearer ${token}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.challenge).toContain('error="invalid_token"');
    expect((await adminGet(enabled, "/executions", `Basic ${Buffer.from(`x:${token}`).toString("base64")}`)).status).toBe(401);
    const ok = await adminGet(enabled, "/executions", `Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual([]);
    for (const res of [none, wrong]) expect(res.body).not.toContain(token);

    expect((await adminGet(disabled, "/executions")).status).toBe(404);
    expect((await adminGet(disabled, "/executions", `Bearer ${token}`)).status).toBe(404);
    for (const sidecar of [enabled, disabled]) {
      expect((await adminGet(sidecar, "/metrics")).status).toBe(200);
      expect((await adminGet(sidecar, "/healthz")).status).toBe(200);
    }
  }, 60_000);
});

describe("signed handoff records", () => {
  it("default settings (pyfly secret, no handoff key): a retry record copied with its value changed is never delivered, it is dead-lettered as forged_retry_record and counted; so is one without its MAC; the genuine retry is still delivered", async () => {
    const r = await receiver();
    let first = true;
    r.behave(() => {
      const status = first ? 503 : 200;
      first = false;
      return { kind: "respond", status };
    });
    const { topic, setup } = await scenarioSetup("sec-forge");
    // A long backoff: the copies go in while the genuine retry still waits for its due time.
    const configs = [
      {
        id: "sec-forge",
        "tenant-id": "forge",
        name: "orders",
        secret: randomSecret("forge"),
        "max-attempts": 3,
        "backoff-ms": 8_000,
        subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${r.url}/forge` }],
      },
    ];
    const callbacks = sidecarConfig({ ...setup, configs });
    const sidecar = SidecarProcess.start("forge", callbacks);
    await sidecar.waitReady();
    const [event] = events(1, { prefix: `forge-${randomUUID().slice(0, 6)}`, tenant: "forge", eventType: "OrderPlaced" });
    await produce(producer, topic, [event!]);
    await r.waitForRequests(1);
    await waitFor(
      "the retry record",
      async () => (await admin.fetchTopicOffsets(setup.retryTopic).catch(() => [])).some((p) => Number(p.high) > 0),
      20_000,
    );
    const [genuine] = await readAll(setup.retryTopic);
    expect(genuine, "one retry record").toBeDefined();
    const body = genuine!.value!.toString("utf8");
    expect(body).toBe(r.requests[0]!.body.toString("utf8"));
    expect(genuine!.headers[H.mac]).toMatch(/^v1=/);

    const changed = body.replace(/\}$/, ',"amount":1000000,"forged":true}');
    expect(JSON.parse(changed)).toMatchObject({ forged: true });
    const { [H.mac]: _mac, ...unsealedHeaders } = genuine!.headers;
    const retryTopic = { name: setup.retryTopic, partitions: 1 };
    await produce(producer, retryTopic, [
      { id: "value changed", key: genuine!.key, value: changed, headers: genuine!.headers, partition: genuine!.partition },
      { id: "no MAC", key: genuine!.key, value: changed, headers: unsealedHeaders, partition: genuine!.partition },
    ]);
    const copiesAt = Date.now();

    const m = await metricsWhen(
      sidecar,
      (x) => `2 forged_retry_record dead letters (have ${x.sum(DEAD_LETTERS, { reason: "forged_retry_record" })})`,
      (x) => x.sum(DEAD_LETTERS, { reason: "forged_retry_record" }) >= 2,
    );
    expect(m.get(MetricMap.key(DEAD_LETTERS, { tenant: "forge", reason: "forged_retry_record" }))).toBe(2);
    // The genuine retry is delivered when due, the copies having been dead-lettered around it.
    await r.waitForRequests(2, 20_000);
    await sleep(1_500);
    const m2 = await sidecar.metrics();
    expect(m2.get(MetricMap.key(DEAD_LETTERS, { tenant: "forge", reason: "forged_retry_record" }))).toBe(2);
    expect(m2.sum(DEAD_LETTERS)).toBe(2);
    expect(r.requests.map((q) => q.status)).toEqual([503, 200]);
    for (const q of r.requests) expect(q.body.toString("utf8")).toBe(body);
    expect(String(r.requests[1]!.headers[DELIVERY_ID])).toBe(genuine!.headers[H.deliveryId]);
    console.log(
      `forged retry records produced ${copiesAt < r.requests[1]!.at ? "before" : "after"} the genuine retry was delivered (${r.requests[1]!.at - copiesAt} ms)`,
    );

    const dead = await readAll(setup.deadLetterTopic);
    expect(dead).toHaveLength(2);
    for (const d of dead) {
      expect(d.headers).toMatchObject({ [H.reason]: "forged_retry_record", [H.status]: "UNDISPATCHABLE" });
      expect(d.value?.toString("utf8")).toBe(changed);
      // What the forger wrote in our headers is not carried into the dead letter.
      expect(d.headers[H.mac]).toBeUndefined();
      expect(d.headers[H.subscription]).toBeUndefined();
    }
    // Nor can replay redo them: they name no delivery.
    const dry = await runCli(["replay", "--dry-run", "--config", writeConfig("forge", callbacks)], { timeoutMs: 60_000 });
    expect(replayOutput(dry).summary, dry.stderr).toMatchObject({ read: 2, not_replayable: 2, forged: 0, matched: 0 });
  }, 90_000);

  it("a copy of a genuine retry record produced again (the MAC proves where a record came from, not that it is new) after its delivery ended: left alone and counted, no second request", async () => {
    const r = await receiver();
    let first = true;
    r.behave(() => {
      const status = first ? 503 : 200;
      first = false;
      return { kind: "respond", status };
    });
    const { topic, setup } = await scenarioSetup("sec-copy");
    const configs = [
      {
        id: "sec-copy",
        "tenant-id": "acme",
        name: "orders",
        secret: randomSecret("acme"),
        "max-attempts": 3,
        "backoff-ms": 300,
        subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${r.url}/copy` }],
      },
    ];
    const sidecar = SidecarProcess.start("copy", sidecarConfig({ ...setup, configs }));
    await sidecar.waitReady();
    const [event] = events(1, { prefix: `copy-${randomUUID().slice(0, 6)}`, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, [event!]);
    await r.waitForRequests(2);
    const [genuine] = await readAll(setup.retryTopic);
    await produce(producer, { name: setup.retryTopic, partitions: 1 }, [
      { id: "copy", key: genuine!.key, value: genuine!.value, headers: genuine!.headers, partition: genuine!.partition },
    ]);
    await waitFor(
      "the copy to be counted",
      async () => (await sidecar.metrics()).sum("callbacks_retry_records_ignored_total", { reason: "already_final" }) === 1,
      20_000,
    );
    await sleep(500);
    expect(r.requests.map((q) => q.status)).toEqual([503, 200]);
    expect(new Set(r.requests.map((q) => String(q.headers[DELIVERY_ID])))).toEqual(new Set([genuine!.headers[H.deliveryId]]));
    for (const q of r.requests) expect(q.body.equals(genuine!.value!)).toBe(true);
    expect((await sidecar.metrics()).sum(DEAD_LETTERS)).toBe(0);
  }, 60_000);

  // Regression: the process used to take its kept execution (DELIVERED, attempts == max-attempts),
  // find no attempt left and end it FAILED "attempts_exhausted": a dead letter for a delivered webhook.
  it("a copy of a genuine retry record produced again after the delivery succeeded on its LAST attempt: the delivery stays DELIVERED and nothing is dead-lettered", async () => {
    const r = await receiver();
    let first = true;
    r.behave(() => {
      const status = first ? 503 : 200;
      first = false;
      return { kind: "respond", status };
    });
    const { topic, setup } = await scenarioSetup("sec-copy-last");
    const token = randomSecret("executions");
    const configs = [
      {
        id: "sec-copy-last",
        "tenant-id": "acme",
        name: "orders",
        secret: randomSecret("acme"),
        "max-attempts": 2,
        "backoff-ms": 300,
        subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${r.url}/copy-last` }],
      },
    ];
    const sidecar = SidecarProcess.start(
      "copy-last",
      sidecarConfig({ ...setup, configs, callbacks: { server: { executions: { enabled: true, token: "${TOKEN}" } } } }),
      { TOKEN: token },
    );
    await sidecar.waitReady();
    const [event] = events(1, { prefix: `copy-last-${randomUUID().slice(0, 6)}`, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, [event!]);
    await r.waitForRequests(2);
    const [genuine] = await readAll(setup.retryTopic);
    await produce(producer, { name: setup.retryTopic, partitions: 1 }, [
      { id: "copy", key: genuine!.key, value: genuine!.value, headers: genuine!.headers, partition: genuine!.partition },
    ]);
    await waitFor(
      "the copy to be consumed",
      async () => {
        const [entry] = await admin.fetchOffsets({ groupId: `${setup.groupId}.retry`, topics: [setup.retryTopic] });
        return entry?.partitions.some((p) => Number(p.offset) >= 2) ?? false;
      },
      20_000,
    );
    await sleep(500);
    const executions = JSON.parse((await adminGet(sidecar, "/executions", `Bearer ${token}`)).body) as Record<string, unknown>[];
    const m = await sidecar.metrics();
    const dead = await readAll(setup.deadLetterTopic);
    expect({
      statuses: r.requests.map((q) => q.status),
      execution: executions.map((e) => e.status),
      deadLetters: dead.map((d) => d.headers[H.reason]),
      finalFailed: m.sum("callbacks_deliveries_total", { status: "FAILED" }),
    }).toEqual({ statuses: [503, 200], execution: ["DELIVERED"], deadLetters: [], finalFailed: 0 });
  }, 60_000);

  it("a config without a secret: with no handoff key, a record sealed with the key derived from its config id is delivered (its records can be forged by anyone who knows the id); once handoff.keys is set, that record is dead-lettered as forged and only one sealed with a configured key is delivered", async () => {
    const r = await receiver();
    const handoffKey = randomSecret("handoff-key-0");
    const run = async (name: string, keys: string[]) => {
      const { setup } = await scenarioSetup(`sec-open-${name}`);
      const url = `${r.url}/${name}`;
      const configs = [
        {
          id: "open-cfg",
          "tenant-id": "open",
          name: "unsigned",
          "max-attempts": 2,
          "backoff-ms": 100,
          subscriptions: [{ "event-type": "OrderPlaced", "target-url": url }],
        },
      ];
      const sidecar = SidecarProcess.start(`open-${name}`, sidecarConfig({ ...setup, configs, callbacks: { handoff: { keys } } }), {});
      await sidecar.waitReady();
      const record = (label: string, key: Buffer): OutboundRecord => {
        const h: DeliveryHandoff = {
          deliveryId: `${name}-${label}-${randomUUID()}`,
          executionId: randomUUID(),
          configId: "open-cfg",
          tenantId: "open",
          eventType: "OrderPlaced",
          subscriptionEventType: "OrderPlaced",
          subscriptionFingerprint: subscriptionFingerprint({ event_type: "OrderPlaced", target_url: url, headers: {} }),
          target: redactUrl(url),
          attempts: 1,
          createdAt: new Date().toISOString(),
          occurredAt: Date.now(),
          lastError: "HTTP 503",
          responseStatus: 503,
          source: null,
        };
        return sealed(retryRecord(h, JSON.stringify({ sealed_with: label }), Date.now(), undefined, null, setup.groupId), "retry", key);
      };
      const idDerived = handoffKeys([], { id: "open-cfg", secret: null })[0] as Buffer;
      const out = [record("id-derived", idDerived)];
      if (keys.length > 0) out.push(record("handoff-key", Buffer.from(handoffKey, "utf8")));
      await producer.send({
        topic: setup.retryTopic,
        acks: -1,
        messages: out.map((o) => ({ key: o.key, value: o.value, headers: o.headers })),
      });
      return { sidecar, out, path: `/${name}` };
    };
    const [open, keyed] = await Promise.all([run("no-keys", []), run("keys", [handoffKey])]);

    await r.waitForRequests(2, 30_000);
    await metricsWhen(
      keyed.sidecar,
      (m) => `a forged_retry_record (have ${m.sum(DEAD_LETTERS)})`,
      (m) => m.sum(DEAD_LETTERS, { tenant: "open", reason: "forged_retry_record" }) === 1,
    );
    await sleep(1_000);
    const got = (p: string) =>
      r.requests.filter((q) => q.url === p).map((q) => JSON.parse(q.body.toString("utf8")) as { sealed_with: string });
    expect(got(open.path)).toEqual([{ sealed_with: "id-derived" }]);
    expect(got(keyed.path)).toEqual([{ sealed_with: "handoff-key" }]);
    for (const q of r.requests) expect(q.headers["x-pyfly-signature"]).toBeUndefined();
    expect((await open.sidecar.metrics()).sum(DEAD_LETTERS)).toBe(0);
    expect((await keyed.sidecar.metrics()).sum(DEAD_LETTERS)).toBe(1);
  }, 90_000);

  // With no handoff key, records are sealed under a key derived from the signing secret: the keys
  // derived from additional-secrets must verify too, or a rotation would make every record sealed
  // before it "forged" (never delivered, not replayable).
  it("no handoff key, a Standard Webhooks secret rotated as documented (new secret, old one in additional-secrets): a retry and a dead letter written before the rotation are still delivered", async () => {
    const r = await receiver();
    const seen = new Set<string>();
    let rotated = false;
    r.behave((req) => {
      // /retry: 503 to its first request only; /final: 400 (a dead letter at once) before the rotation.
      if (req.url === "/final") return { kind: "respond", status: rotated ? 200 : 400 };
      const status = seen.has(req.url) ? 200 : 503;
      seen.add(req.url);
      return { kind: "respond", status };
    });
    const { topic, setup } = await scenarioSetup("sec-rotate");
    const oldSecret = `whsec_${randomBytes(32).toString("base64")}`;
    const newSecret = `whsec_${randomBytes(32).toString("base64")}`;
    const tenant = (secret: string, additional: string[]) => ({
      id: "sec-rotate",
      "tenant-id": "acme",
      name: "orders",
      "signing-scheme": "standard-webhooks",
      secret,
      "additional-secrets": additional,
      "max-attempts": 3,
      "backoff-ms": 8_000,
      subscriptions: [
        { "event-type": "OrderPlaced", "target-url": `${r.url}/retry` },
        { "event-type": "OrderPlaced", "target-url": `${r.url}/final` },
      ],
    });
    const before = SidecarProcess.start("rotate-before", sidecarConfig({ ...setup, configs: [tenant(oldSecret, [])] }));
    await before.waitReady();
    const [event] = events(1, { prefix: `rotate-${randomUUID().slice(0, 6)}`, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, [event!]);
    await metricsWhen(
      before,
      (m) => `a retry scheduled and a dead letter (have ${m.sum("callbacks_retries_scheduled_total")}, ${m.sum(DEAD_LETTERS)})`,
      (m) => m.sum("callbacks_retries_scheduled_total") === 1 && m.sum(DEAD_LETTERS, { reason: "final_status" }) === 1,
    );
    // Stopped before the retry is due (8 s): the retry stays in the retry topic for the next process.
    before.kill("SIGTERM");
    expect((await before.waitExit(20_000)).code).toBe(0);
    expect(r.requests.map((q) => `${q.url} ${q.status}`).sort()).toEqual(["/final 400", "/retry 503"]);

    rotated = true;
    const after = sidecarConfig({ ...setup, configs: [tenant(newSecret, [oldSecret])] });
    const sidecar = SidecarProcess.start("rotate-after", after);
    await sidecar.waitReady();
    await waitFor(
      () => `the retry delivered or dead-lettered (requests ${r.requests.map((q) => `${q.url} ${q.status}`).join(", ")})`,
      async () => r.requests.some((q) => q.url === "/retry" && q.status === 200) || (await sidecar.metrics()).sum(DEAD_LETTERS) > 0,
      30_000,
    );
    const forgedRetries = (await sidecar.metrics()).sum(DEAD_LETTERS, { reason: "forged_retry_record" });
    const replay = await runCli(["replay", "--config", writeConfig("rotate-after", after)], { timeoutMs: 60_000 });
    const { summary } = replayOutput(replay);
    const delivered = r.requests.filter((q) => q.status === 200);
    expect({
      forgedRetries,
      retryDelivered: delivered.filter((q) => q.url === "/retry").length,
      replay: { delivered: summary.delivered, forged: summary.forged },
      finalDelivered: delivered.filter((q) => q.url === "/final").length,
    }).toEqual({ forgedRetries: 0, retryDelivered: 1, replay: { delivered: 1, forged: 0 }, finalDelivered: 1 });
    // Signed with both secrets during the overlap.
    for (const q of delivered) expect(String(q.headers["webhook-signature"]).split(" ")).toHaveLength(2);
  }, 120_000);

  it("replay skips a dead letter whose value was changed (summary.forged 1, never sent) and delivers the genuine one", async () => {
    const r = await receiver({ kind: "respond", status: 503 });
    const { topic, setup } = await scenarioSetup("sec-forged-dlq");
    const configs = [
      {
        id: "sec-forged-dlq",
        "tenant-id": "acme",
        name: "orders",
        secret: randomSecret("acme"),
        "max-attempts": 1,
        subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${r.url}/dlq` }],
      },
    ];
    const callbacks = sidecarConfig({ ...setup, configs });
    const sidecar = SidecarProcess.start("forged-dlq", callbacks);
    await sidecar.waitReady();
    const [event] = events(1, { prefix: `dlq-${randomUUID().slice(0, 6)}`, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, [event!]);
    await metricsWhen(
      sidecar,
      (m) => `a dead letter (have ${m.sum(DEAD_LETTERS)})`,
      (m) => m.sum(DEAD_LETTERS, { reason: "attempts_exhausted" }) === 1,
    );
    sidecar.kill("SIGTERM");
    await sidecar.waitExit(20_000);

    const [genuine] = await readAll(setup.deadLetterTopic);
    const body = genuine!.value!.toString("utf8");
    const changed = body.replace(/\}$/, ',"forged":true}');
    await produce(producer, { name: setup.deadLetterTopic, partitions: 1 }, [
      { id: "forged", key: genuine!.key, value: changed, headers: genuine!.headers, partition: genuine!.partition },
    ]);

    r.behave({ kind: "respond", status: 200 });
    const result = await runCli(["replay", "--config", writeConfig("forged-dlq", callbacks)], { timeoutMs: 60_000 });
    const { lines, summary } = replayOutput(result);
    expect(result.code, result.stderr).toBe(0);
    expect(summary).toMatchObject({ read: 2, matched: 2, delivered: 1, failed: 0, forged: 1, not_replayable: 0, truncated: 0 });
    expect(lines.find((l) => l.offset === "1")).toMatchObject({
      replayable: false,
      skipped: "mac_invalid",
      delivery_id: genuine!.headers[H.deliveryId],
    });
    expect(r.requests).toHaveLength(2);
    for (const q of r.requests) expect(q.body.toString("utf8")).toBe(body);
    expect(r.requests[1]!.status).toBe(200);
  }, 90_000);
});

describe("secrets and Kubernetes", () => {
  it("whsec_AAAA (3 bytes) as a Standard Webhooks secret or additional secret, or a handoff key under 32 bytes: check-config and run exit 78 naming the key path", async () => {
    const config = (secret: string, additional: string[]) =>
      writeConfig("whsec", {
        enabled: true,
        kafka: { brokers: ["127.0.0.1:1"], topics: ["orders"] },
        configs: [
          {
            "tenant-id": "acme",
            name: "sw",
            "signing-scheme": "standard-webhooks",
            secret,
            "additional-secrets": additional,
            subscriptions: [{ "event-type": "*", "target-url": "https://hooks.example.com/x" }],
          },
        ],
      });
    const good = `whsec_${randomBytes(32).toString("base64")}`;
    for (const [file, key] of [
      [config("whsec_AAAA", []), "pyfly.callbacks.configs[0].secret"],
      [config(good, ["whsec_AAAA"]), "pyfly.callbacks.configs[0].additional-secrets[0]"],
    ] as const) {
      for (const command of ["check-config", "run"]) {
        const result = await runCli([command, "--config", file], { timeoutMs: 20_000 });
        expect(result.signal, `${command} should exit on its own`).toBeNull();
        expect(result.code, `${command}: ${result.stderr}`).toBe(78);
        expect(result.stderr).toContain(`${key}: the key is shorter than 24 bytes`);
        expect(result.stdout + result.stderr).not.toContain("whsec_AAAA");
        expect(result.stdout + result.stderr).not.toContain(good);
      }
    }
    // A handoff key is an HMAC key: 32 bytes or more.
    const shortKey = "handoff-key-of-31-bytes-xxxxxxx";
    expect(Buffer.byteLength(shortKey)).toBe(31);
    const file = writeConfig("short-handoff-key", {
      enabled: true,
      kafka: { brokers: ["127.0.0.1:1"], topics: ["orders"] },
      handoff: { keys: ["${HANDOFF_KEY}"] },
      configs: [
        {
          "tenant-id": "acme",
          name: "sw",
          "signing-scheme": "standard-webhooks",
          secret: good,
          subscriptions: [{ "event-type": "*", "target-url": "https://hooks.example.com/x" }],
        },
      ],
    });
    for (const command of ["check-config", "run"]) {
      const result = await runCli([command, "--config", file], { env: { HANDOFF_KEY: shortKey }, timeoutMs: 20_000 });
      expect(result.code, `${command}: ${result.stderr}`).toBe(78);
      expect(result.stderr).toContain("pyfly.callbacks.handoff.keys[0]: shorter than 32 bytes");
      expect(result.stdout + result.stderr).not.toContain(shortKey);
    }
    const ok = await runCli(["check-config", "--config", file], { env: { HANDOFF_KEY: `${shortKey}x` } });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("starts, gets ready and delivers with Kubernetes service-link variables named PYFLY_CALLBACKS_* in its environment; a typo (PYFLY_CALLBACKS_HTTP_TIMOUT) still exits 78 naming it", async () => {
    const r = await receiver();
    const { topic, setup } = await scenarioSetup("sec-links");
    const configs = [
      {
        "tenant-id": "acme",
        name: "orders",
        secret: randomSecret("acme"),
        subscriptions: [{ "event-type": "OrderPlaced", "target-url": `${r.url}/links` }],
      },
    ];
    // What the kubelet injects for a Service "foo" (the case that was reported) and for the Service of a Helm
    // release named pyfly-callbacks ("pyfly-callbacks-callback-sidecar", port cb-admin 8080).
    const links = {
      PYFLY_CALLBACKS_FOO_SERVICE_HOST: "10.0.0.1",
      PYFLY_CALLBACKS_FOO_PORT: "tcp://10.0.0.1:80",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_SERVICE_HOST: "10.96.12.7",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_SERVICE_PORT: "8080",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_SERVICE_PORT_CB_ADMIN: "8080",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT: "tcp://10.96.12.7:8080",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP: "tcp://10.96.12.7:8080",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP_ADDR: "10.96.12.7",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP_PORT: "8080",
      PYFLY_CALLBACKS_CALLBACK_SIDECAR_PORT_8080_TCP_PROTO: "tcp",
    };
    const callbacks = sidecarConfig({ ...setup, configs });
    const sidecar = SidecarProcess.start("links", callbacks, links);
    await sidecar.waitReady();
    expect((await adminGet(sidecar, "/readyz")).status).toBe(200);
    const warning = sidecar.logs().find((l) => String(l.msg).startsWith("configuration: environment: ignored"));
    expect(String(warning?.msg)).toContain(Object.keys(links).sort().join(", "));
    const [event] = events(1, { prefix: `links-${randomUUID().slice(0, 6)}`, tenant: "acme", eventType: "OrderPlaced" });
    await produce(producer, topic, [event!]);
    await r.waitForRequests(1);
    expect(r.requests[0]).toMatchObject({ url: "/links", status: 200 });

    const typo = SidecarProcess.start("links-typo", callbacks, { ...links, PYFLY_CALLBACKS_HTTP_TIMOUT: "5s" });
    expect((await typo.waitExit(20_000)).code).toBe(78);
    expect(typo.stderr).toContain("environment PYFLY_CALLBACKS_HTTP_TIMOUT: does not name a pyfly.callbacks key");
  }, 90_000);
});
