/**
 * OpenTelemetry on the real broker, with the BUILT sidecar: a producer's trace continues through
 * the sidecar, the retry topic and into the receiver's request; the spans reach an OTLP/HTTP
 * endpoint (a real server decoding what the exporter sends) with the semantic-convention
 * attributes and no secret; the per-config switch keeps trace context from receivers; with
 * tracing off nothing is exported or sent.
 */
import { randomBytes } from "node:crypto";
import type { Admin, Producer } from "kafkajs";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { e2eSuite } from "../support/e2e-suite.js";
import { startOtlpSink, type OtlpSink } from "../support/otlp-sink.js";
import { failFirstAttempt } from "../support/receiver.js";
import { callbackConfig, SidecarProcess, sidecarConfig } from "../support/sidecar-process.js";
import { readTopic, scenario, sleep, startRecordingReceiver, waitFor } from "../support/traffic.js";

const e2e = e2eSuite("e2e-tracing");
const { brokers, track } = e2e;
const SECRET = "e2e-tracing-pyfly-secret-0b7e";
const CAPABILITY = "capability-token-4f1d9a";

let admin: Admin;
let producer: Producer;
beforeAll(() => void ({ admin, producer } = e2e));

const CLIENT = 3;
const CONSUMER = 5;
const hex = (bytes: number) => randomBytes(bytes).toString("hex");
const traceIdOf = (traceparent: unknown) => String(traceparent).split("-")[1];
const spanIdOf = (traceparent: unknown) => String(traceparent).split("-")[2];

/** Tracing on, exporting OTLP/JSON to `sink` quickly (100 ms batches). */
const tracingEnv = (sink: OtlpSink, protocol = "http/json"): NodeJS.ProcessEnv => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_BSP_SCHEDULE_DELAY: "100",
  OTEL_SERVICE_NAME: "callback-sidecar-e2e",
});

describe("tracing", () => {
  it("a producer's trace reaches the receiver through a 503 and the retry topic; consumer and client spans are exported with their attributes, parented as documented, with no secret", async () => {
    const sink = await startOtlpSink();
    try {
      const { topic, setup } = await scenario(admin, brokers, "tracing", { partitions: 1 });
      const receiver = track(await startRecordingReceiver());
      const sidecar = SidecarProcess.start(
        "tracing",
        sidecarConfig({
          ...setup,
          callbacks: { tracing: { enabled: true }, "log-level": "info" },
          configs: [
            callbackConfig("acme", "traced", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/traced?token=${CAPABILITY}` }], {
              "send-trace-context": true,
              "backoff-ms": 1_000,
            }),
            callbackConfig("quiet", "untraced", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/quiet` }], {
              "backoff-ms": 1_000,
            }),
            callbackConfig("gone", "final", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/gone` }], {
              "send-trace-context": true,
            }),
          ],
        }),
        tracingEnv(sink),
      );
      await sidecar.waitReady();
      const firstFails = failFirstAttempt(503);
      receiver.behave((req) => (req.url.startsWith("/gone") ? { kind: "respond", status: 410 } : firstFails(req)));

      const traces = { acme: hex(16), quiet: hex(16), gone: hex(16) };
      const producerSpan = hex(8);
      await producer.send({
        topic: topic.name,
        acks: -1,
        messages: Object.entries(traces).map(([tenant, trace]) => ({
          key: `k-${tenant}`,
          value: JSON.stringify({ tenant }),
          headers: {
            "x-tenant-id": tenant,
            "x-event-type": "OrderPlaced",
            traceparent: `00-${trace}-${producerSpan}-01`,
            tracestate: "vendor=x",
          },
        })),
      });
      await waitFor(
        () => `5 requests (have ${receiver.requests.length})\n${sidecar.tail(10)}`,
        () => receiver.requests.length >= 5,
        30_000,
      );
      await sleep(500);

      // The receiver: the same trace on both attempts of acme, a new span each time; none for quiet.
      const traced = receiver.requests.filter((r) => r.url.startsWith("/traced"));
      expect(traced).toHaveLength(2);
      for (const r of traced) {
        expect(traceIdOf(r.headers.traceparent)).toBe(traces.acme);
        expect(spanIdOf(r.headers.traceparent)).not.toBe(producerSpan);
        expect(r.headers.tracestate).toBe("vendor=x");
      }
      expect(spanIdOf(traced[0]!.headers.traceparent)).not.toBe(spanIdOf(traced[1]!.headers.traceparent));
      for (const r of receiver.requests.filter((x) => x.url === "/quiet")) expect(r.headers.traceparent).toBeUndefined();

      // The spans.
      const ofTrace = (trace: string) => sink.spans.filter((s) => s.traceId === trace);
      await waitFor(
        () =>
          `acme's spans (have ${ofTrace(traces.acme)
            .map((s) => s.name)
            .join(", ")})`,
        () =>
          ofTrace(traces.acme).filter((s) => s.kind === CLIENT).length >= 2 &&
          ofTrace(traces.acme).filter((s) => s.kind === CONSUMER).length >= 2,
        20_000,
      );
      const spans = ofTrace(traces.acme);
      const consumers = spans.filter((s) => s.kind === CONSUMER);
      const first = consumers.find((s) => s.name === `process ${topic.name}`)!;
      expect(first.parentSpanId).toBe(producerSpan);
      expect(first.attributes).toMatchObject({
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic.name,
        "messaging.consumer.group.name": setup.groupId,
        "messaging.destination.partition.id": "0",
        "messaging.kafka.message.key": "k-acme",
      });
      expect(typeof first.attributes["messaging.kafka.offset"]).toBe("number");
      expect(first.events.map((e) => e.name)).toContain("retry_scheduled");
      expect(first.resource["service.name"]).toBe("callback-sidecar-e2e");
      // The retry is read from the retry topic as a child of the first processing (same trace).
      const retry = consumers.find((s) => s.name === `process ${setup.retryTopic}` && s.parentSpanId === first.spanId);
      expect(retry, `consumers: ${consumers.map((s) => `${s.name}<-${s.parentSpanId}`).join(", ")}`).toBeDefined();
      const clients = spans.filter((s) => s.kind === CLIENT);
      const [failed, delivered] = [
        clients.find((s) => s.attributes["http.response.status_code"] === 503)!,
        clients.find((s) => s.attributes["http.response.status_code"] === 200)!,
      ];
      expect(delivered, JSON.stringify(clients.map((c) => c.attributes))).toBeDefined();
      expect(failed.parentSpanId).toBe(first.spanId);
      expect(delivered.parentSpanId).toBe(retry!.spanId);
      expect(failed.attributes).toMatchObject({
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": receiver.port,
        "error.type": "503",
      });
      expect(failed.status).toBe(2);
      expect(delivered.attributes["http.request.resend_count"]).toBe(1);
      expect(delivered.attributes["error.type"]).toBeUndefined();
      expect(String(failed.attributes["url.full"])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
      // The receiver's traceparent names the attempt's own span.
      expect(new Set(traced.map((r) => spanIdOf(r.headers.traceparent)))).toEqual(new Set([failed.spanId, delivered.spanId]));

      // quiet: spans exported although its receiver got no trace context.
      expect(ofTrace(traces.quiet).filter((s) => s.kind === CLIENT).length).toBeGreaterThanOrEqual(1);

      // gone: a final 410 is a dead letter, on the span and in a log line naming the trace.
      await waitFor("gone's consumer span", () => ofTrace(traces.gone).some((s) => s.kind === CONSUMER), 10_000);
      const gone = ofTrace(traces.gone).find((s) => s.kind === CONSUMER)!;
      expect(gone.events).toContainEqual({ name: "dead_lettered", attributes: { reason: "final_status" } });
      expect(gone.status).toBe(2);
      const [letter] = await readTopic(e2e.kafka, setup.deadLetterTopic, 1, 20_000);
      expect(traceIdOf(letter?.headers.traceparent)).toBe(traces.gone);
      const line = sidecar.logs().find((l) => l.msg === "delivery failed; written to the dead-letter topic");
      expect(line?.trace_id).toBe(traces.gone);
      expect(line?.span_id).toBe(gone.spanId);

      // replay continues the dead letter's trace: a span for the dead letter, child of the
      // processing that gave up, and the replayed request in the same trace.
      receiver.behave({ kind: "respond", status: 200 });
      const replayed = await runCli(["replay", "--config", sidecar.configPath], { env: tracingEnv(sink), timeoutMs: 60_000 });
      expect(replayed.code, replayed.stderr).toBe(0);
      await waitFor("the replay's spans", () => ofTrace(traces.gone).filter((s) => s.kind === CONSUMER).length >= 2, 10_000);
      const replaySpan = ofTrace(traces.gone).find((s) => s.name === `process ${setup.deadLetterTopic}`)!;
      expect(replaySpan.parentSpanId).toBe(gone.spanId);
      const replayedRequest = receiver.requests.filter((r) => r.url === "/gone").at(-1)!;
      expect(traceIdOf(replayedRequest.headers.traceparent)).toBe(traces.gone);
      const replayClient = ofTrace(traces.gone).find((s) => s.kind === CLIENT && s.parentSpanId === replaySpan.spanId);
      expect(replayClient?.attributes["http.response.status_code"]).toBe(200);

      // Nothing secret in any attribute or event.
      const everything = JSON.stringify(sink.spans);
      for (const secret of [SECRET, CAPABILITY, "sha256=", "X-Pyfly-Signature"]) expect(everything).not.toContain(secret);
    } finally {
      await sink.close();
    }
  }, 90_000);

  it("OTLP over http/protobuf (the default protocol) exports the same spans", async () => {
    const sink = await startOtlpSink();
    try {
      const { topic, setup } = await scenario(admin, brokers, "tracing-proto", { partitions: 1 });
      const receiver = track(await startRecordingReceiver());
      const sidecar = SidecarProcess.start(
        "tracing-proto",
        sidecarConfig({
          ...setup,
          callbacks: { tracing: { enabled: true } },
          configs: [callbackConfig("acme", "n", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/p` }])],
        }),
        { ...tracingEnv(sink), OTEL_EXPORTER_OTLP_PROTOCOL: "" },
      );
      await sidecar.waitReady();
      const trace = hex(16);
      await producer.send({
        topic: topic.name,
        acks: -1,
        messages: [
          { value: "{}", headers: { "x-tenant-id": "acme", "x-event-type": "OrderPlaced", traceparent: `00-${trace}-${hex(8)}-01` } },
        ],
      });
      await waitFor("a protobuf export", () => sink.requests.some((r) => r.body.includes(Buffer.from(trace, "hex"))), 20_000);
      const request = sink.requests.find((r) => r.body.includes(Buffer.from(trace, "hex")))!;
      expect(request.path).toBe("/v1/traces");
      expect(request.contentType).toBe("application/x-protobuf");
      expect(request.body.includes(Buffer.from(`process ${topic.name}`))).toBe(true);
    } finally {
      await sink.close();
    }
  }, 60_000);

  it("with tracing off, nothing is exported and receivers get no trace context, even with OTEL_* set and send-trace-context on", async () => {
    const sink = await startOtlpSink();
    try {
      const { topic, setup } = await scenario(admin, brokers, "tracing-off", { partitions: 1 });
      const receiver = track(await startRecordingReceiver());
      const sidecar = SidecarProcess.start(
        "tracing-off",
        sidecarConfig({
          ...setup,
          configs: [
            callbackConfig("acme", "n", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/p` }], { "send-trace-context": true }),
          ],
        }),
        tracingEnv(sink),
      );
      await sidecar.waitReady();
      await producer.send({
        topic: topic.name,
        acks: -1,
        messages: [
          { value: "{}", headers: { "x-tenant-id": "acme", "x-event-type": "OrderPlaced", traceparent: `00-${hex(16)}-${hex(8)}-01` } },
        ],
      });
      await waitFor("the delivery", () => receiver.requests.length >= 1, 20_000);
      await sleep(1_000);
      expect(receiver.requests[0]?.headers.traceparent).toBeUndefined();
      expect(sink.requests).toHaveLength(0);
      expect(sidecar.logs().some((l) => typeof l.msg === "string" && l.msg.startsWith("tracing on"))).toBe(false);
    } finally {
      await sink.close();
    }
  }, 60_000);
});
