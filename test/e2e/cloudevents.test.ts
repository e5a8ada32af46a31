/**
 * Producers using the official CloudEvents SDK for JavaScript (its Kafka protocol binding) on the
 * real broker, read by the BUILT sidecar: binary, structured and batched content modes are each
 * delivered once, with `data` as the body, to the tenant the event names; an event published
 * twice keeps its delivery id.
 */
import { CloudEvent, Kafka as CloudEventsKafka } from "cloudevents";
import type { Admin, Producer } from "kafkajs";
import { beforeAll, describe, expect, it } from "vitest";
import { e2eSuite } from "../support/e2e-suite.js";
import { callbackConfig, SidecarProcess, sidecarConfig } from "../support/sidecar-process.js";
import { canonicalizeJson } from "../../src/delivery/canonical-json.js";
import { ensurePythonVenv, runPython } from "../support/python.js";
import { DELIVERY_ID, DeliveryLedger, readTopic, scenario, sleep, startRecordingReceiver, waitFor } from "../support/traffic.js";

const e2e = e2eSuite("e2e-cloudevents");
const { brokers, track } = e2e;
const SECRET = "e2e-cloudevents-pyfly-secret-7d2a";

let admin: Admin;
let producer: Producer;
beforeAll(() => void ({ admin, producer } = e2e));

/** A kafkajs message from the SDK's KafkaMessage (the SDK leaves binary-mode data as it is). */
function kafkaMessage(message: { headers: Record<string, unknown>; key?: unknown; value: unknown }) {
  const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)]));
  const value = typeof message.value === "string" || Buffer.isBuffer(message.value) ? message.value : JSON.stringify(message.value);
  return { headers, value };
}

const event = (id: string, tenant: string, data: unknown) =>
  new CloudEvent({
    specversion: "1.0",
    id,
    source: "/orders-service",
    type: "OrderPlaced",
    tenantid: tenant,
    datacontenttype: "application/json",
    data,
  });

describe("CloudEvents SDK producers (Kafka protocol binding)", () => {
  it("binary, structured and batched records are each delivered once with data as the body, to the tenant in the extension; a re-published id keeps its delivery id", async () => {
    const { topic, setup } = await scenario(admin, brokers, "cloudevents", { partitions: 1 });
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "cloudevents",
      sidecarConfig({
        ...setup,
        configs: [
          callbackConfig("acme", "a", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/acme` }]),
          callbackConfig("globex", "g", SECRET, [{ eventType: "OrderPlaced", url: `${receiver.url}/globex` }]),
        ],
      }),
    );
    await sidecar.waitReady();

    const binary = event("bin-1", "acme", { id: "bin-1", amount: 12345678901234567890n.toString() });
    const structured = event("str-1", "globex", { id: "str-1", n: 1 });
    const batch = [event("bat-1", "acme", { id: "bat-1" }), event("bat-2", "globex", { id: "bat-2" })];
    const messages = [
      kafkaMessage(CloudEventsKafka.binary(binary)),
      kafkaMessage(CloudEventsKafka.structured(structured)),
      { headers: { "content-type": "application/cloudevents-batch+json" }, value: JSON.stringify(batch.map((e) => e.toJSON())) },
      // The producer publishes the structured event again (a retry after a crash).
      kafkaMessage(CloudEventsKafka.structured(structured)),
    ];
    await producer.send({ topic: topic.name, acks: -1, messages });

    const ledger = new DeliveryLedger({ r: receiver });
    await waitFor(
      () => `5 requests (have ${receiver.requests.length})\n${sidecar.tail(10)}`,
      () => receiver.requests.length >= 5,
      30_000,
    );
    await sleep(500);
    const got = receiver.requests.map((r) => ({ path: r.url, body: r.body.toString(), id: String(r.headers[DELIVERY_ID]) }));
    expect(got.map((g) => `${g.path} ${g.body}`).sort()).toEqual(
      [
        `/acme {"amount":"12345678901234567890","id":"bin-1"}`,
        `/globex {"id":"str-1","n":1}`,
        `/acme {"id":"bat-1"}`,
        `/globex {"id":"bat-2"}`,
        `/globex {"id":"str-1","n":1}`,
      ].sort(),
    );
    const str = got.filter((g) => g.body.includes("str-1"));
    expect(str[0]?.id).toBe(str[1]?.id);
    expect(ledger.distinct()).toBe(4);
    const m = await sidecar.metrics();
    expect(m.sum("callbacks_dead_letters_total")).toBe(0);
  }, 90_000);

  it("a bad envelope is dead-lettered with a reason naming the attribute", async () => {
    const { topic, setup } = await scenario(admin, brokers, "cloudevents-bad", { partitions: 1 });
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "cloudevents-bad",
      sidecarConfig({ ...setup, configs: [callbackConfig("acme", "a", SECRET, [{ eventType: "*", url: `${receiver.url}/acme` }])] }),
    );
    await sidecar.waitReady();
    const envelope = { specversion: "1.0", id: "x-1", source: "/s", tenantid: "acme", data: {} };
    await producer.send({
      topic: topic.name,
      acks: -1,
      messages: [{ headers: { "content-type": "application/cloudevents+json; charset=utf-8" }, value: JSON.stringify(envelope) }],
    });
    const [letter] = await readTopic(e2e.kafka, setup.deadLetterTopic, 1, 30_000);
    expect(letter?.headers["callback-reason"]).toBe("invalid_cloudevent");
    expect(letter?.headers["callback-last-error"]).toContain("attribute type: missing");
    expect(receiver.requests).toHaveLength(0);
  }, 60_000);

  it("both outbound CloudEvents formats parse with the PyPI cloudevents package into an event whose data is the payload, and the signature verifies over the received bytes", async () => {
    const python = ensurePythonVenv();
    const { topic, setup } = await scenario(admin, brokers, "cloudevents-out", { partitions: 1 });
    const receiver = track(await startRecordingReceiver());
    const sidecar = SidecarProcess.start(
      "cloudevents-out",
      sidecarConfig({
        ...setup,
        configs: [
          {
            ...callbackConfig("acme", "a", SECRET, []),
            subscriptions: [
              { "event-type": "*", "target-url": `${receiver.url}/binary`, format: "cloudevents-binary" },
              { "event-type": "*", "target-url": `${receiver.url}/structured`, format: "cloudevents-structured" },
            ],
          },
        ],
      }),
    );
    await sidecar.waitReady();
    const payload = '{"order":{"id":7,"amount":12345678901234567890,"note":"Zoë"}}';
    await producer.send({
      topic: topic.name,
      acks: -1,
      messages: [{ headers: { "x-tenant-id": "acme", "x-event-type": "OrderPlaced", "x-event-id": "order-7-placed" }, value: payload }],
    });
    await receiver.waitForRequests(2, 30_000);
    const cases = receiver.requests.map((r) => ({
      path: r.url,
      headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)])),
      body_hex: r.body.toString("hex"),
    }));
    const PARSE = String.raw`
import hashlib, hmac, json, sys
from cloudevents.http import from_http
req = json.load(sys.stdin)
out = []
for case in req["cases"]:
    body = bytes.fromhex(case["body_hex"])
    event = from_http(case["headers"], body)
    expected = "sha256=" + hmac.new(req["secret"].encode("utf-8"), body, hashlib.sha256).hexdigest()
    out.append({
        "path": case["path"],
        "data": json.dumps(event.data, separators=(",", ":"), sort_keys=True),
        "id": event["id"], "type": event["type"], "source": event["source"], "tenantid": event.get("tenantid"),
        "signature_valid": hmac.compare_digest(expected, case["headers"]["x-pyfly-signature"]),
    })
json.dump(out, sys.stdout)
`;
    const parsed = JSON.parse(runPython(PARSE, JSON.stringify({ secret: SECRET, cases }), python)) as Record<string, unknown>[];
    // Python's json.dumps(sort_keys) of what it parsed is our canonical body: nothing lost, 20 digits kept.
    const want = { data: canonicalizeJson(payload), id: "order-7-placed", type: "OrderPlaced", tenantid: "acme" };
    expect(parsed.map((p) => p.path).sort()).toEqual(["/binary", "/structured"]);
    for (const p of parsed) {
      expect(p).toMatchObject({ ...want, source: `/kafka/${topic.name}`, signature_valid: true });
    }
  }, 120_000);
});
