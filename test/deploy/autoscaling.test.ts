import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import { RetryTiers } from "../../src/domain/retry-tiers.js";
import { checkSupported, crdProblems, crds, UnsupportedSchema } from "./lib/crd-validate.js";
import { kafkaScalerParameters, parameterProblems } from "./lib/kafka-scaler.js";
import { find, helmTemplate, render, toolsMissing, type K8sObject } from "./lib/render.js";
import { describe as name, strictProblems } from "./lib/strict-validate.js";
import { standInTlsFiles, type StandInTlsFiles } from "./lib/tls-files.js";

type Trigger = { type: string; metadata: Record<string, string>; authenticationRef?: { name: string; kind?: string } };
type ScaledObject = K8sObject & {
  spec: {
    scaleTargetRef: { apiVersion?: string; kind?: string; name: string };
    minReplicaCount: number;
    maxReplicaCount: number;
    pollingInterval: number;
    cooldownPeriod: number;
    advanced?: { horizontalPodAutoscalerConfig?: { behavior?: unknown } };
    triggers: Trigger[];
  };
};
type Ref = { parameter: string; name: string; key: string };
type TriggerAuthentication = K8sObject & { spec: { secretTargetRef?: Ref[]; configMapTargetRef?: Ref[] } };
type Items = { key: string; path: string }[];
type Volume = { name: string; secret?: { secretName: string; items?: Items }; configMap?: { name: string; items?: Items } };
type Container = {
  name: string;
  env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
};
type Deployment = K8sObject & { spec: { replicas?: number; template: { spec: { containers: Container[]; volumes?: Volume[] } } } };

const CI = "ci/autoscaling-values.yaml";
// src/app/sidecar.ts: the retry consumer's group.
const retryGroupOf = (groupId: string) => `${groupId}.retry`;
const SASL = { plain: "plaintext", "scram-sha-256": "scram_sha256", "scram-sha-512": "scram_sha512" } as const;

const scaledObjectOf = (objects: K8sObject[]) => find<ScaledObject>(objects, "ScaledObject");
const triggersOf = (objects: K8sObject[]) => scaledObjectOf(objects).spec.triggers;
const topicsOf = (objects: K8sObject[]) => triggersOf(objects).map((t) => [t.metadata.consumerGroup, t.metadata.topic]);
const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind);
const configOf = (objects: K8sObject[]) =>
  (objects.find((o) => o.kind === "ConfigMap" && "application.yml" in ((o as { data?: object }).data ?? {})) as unknown as { data: Record<string, string> }).data[
    "application.yml"
  ]!;
const sidecarOf = (d: Deployment) => d.spec.template.spec.containers.find((c) => c.name === "callback-sidecar")!;

/** The Secret or ConfigMap key behind a file of the sidecar container, found in the rendered pod spec. */
function fileSource(d: Deployment, path: string): { kind: "secret" | "configMap"; name: string; key: string } | undefined {
  const base = (p: string) => p.replace(/\/$/, "");
  const mount = (sidecarOf(d).volumeMounts ?? [])
    .filter((m) => (m.subPath ? m.mountPath === path : path.startsWith(`${base(m.mountPath)}/`)))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) return undefined;
  const relative = mount.subPath ?? path.slice(base(mount.mountPath).length + 1);
  const volume = d.spec.template.spec.volumes?.find((v) => v.name === mount.name);
  const source = volume?.secret
    ? { kind: "secret" as const, name: volume.secret.secretName, items: volume.secret.items }
    : volume?.configMap
      ? { kind: "configMap" as const, name: volume.configMap.name, items: volume.configMap.items }
      : undefined;
  if (!source) return undefined;
  const key = source.items ? source.items.find((i) => i.path === relative)?.key : relative;
  return key === undefined ? undefined : { kind: source.kind, name: source.name, key };
}

/** Every problem KEDA or the API server would have with the render's KEDA objects, and the rest. */
async function problemsOf(objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) for (const p of await strictProblems(object)) problems.push(`${name(object)}: ${p}`);
  for (const [i, trigger] of triggersOf(objects).entries()) {
    expect(trigger.type).toBe("kafka");
    for (const p of parameterProblems(trigger.metadata, "triggerMetadata")) problems.push(`trigger ${i}: ${p}`);
  }
  for (const ta of objects.filter((o): o is TriggerAuthentication => o.kind === "TriggerAuthentication")) {
    const supplied = [...(ta.spec.secretTargetRef ?? []), ...(ta.spec.configMapTargetRef ?? [])].map((r) => [r.parameter, undefined]);
    for (const p of parameterProblems(Object.fromEntries(supplied), "authParams")) problems.push(`${name(ta)}: ${p}`);
  }
  return problems;
}

const scaledObject = (spec: Record<string, unknown>) => ({
  apiVersion: "keda.sh/v1alpha1",
  kind: "ScaledObject",
  metadata: { name: "x", labels: { a: "b" } },
  spec: { scaleTargetRef: { name: "x" }, triggers: [{ type: "kafka", metadata: { topic: "t" } }], ...spec },
});

describe("the KEDA CRD validator itself", () => {
  it("accepts a valid ScaledObject and TriggerAuthentication", () => {
    expect(crdProblems(scaledObject({ minReplicaCount: 0, maxReplicaCount: 3 }))).toEqual([]);
    const ta = { apiVersion: "keda.sh/v1alpha1", kind: "TriggerAuthentication", metadata: { name: "x" }, spec: { secretTargetRef: [{ parameter: "p", name: "s", key: "k" }] } };
    expect(crdProblems(ta)).toEqual([]);
  });

  it("rejects unknown fields, wrong types and values at any depth", () => {
    expect(crdProblems(scaledObject({ pollingIntervall: 5 }))).toEqual(["ScaledObject.spec.pollingIntervall: unknown field"]);
    expect(crdProblems(scaledObject({ triggers: [{ type: "kafka", metadata: {}, authenticationRef: { nmae: "x" } }] }))).toEqual([
      "ScaledObject.spec.triggers[0].authenticationRef.name: required",
      "ScaledObject.spec.triggers[0].authenticationRef.nmae: unknown field",
    ]);
    expect(crdProblems(scaledObject({ pollingInterval: "30" }))).toEqual(["ScaledObject.spec.pollingInterval: must be integer, got string"]);
    expect(crdProblems(scaledObject({ triggers: [{ type: "kafka", metadata: { lagThreshold: 10 } }] }))).toEqual([
      "ScaledObject.spec.triggers[0].metadata.lagThreshold: must be string, got integer",
    ]);
    expect(crdProblems(scaledObject({ maxReplicaCount: 0, triggers: [] }))).toEqual([
      "ScaledObject.spec.triggers: fewer than 1 items",
      "ScaledObject.spec.maxReplicaCount: must be >= 1, got 0",
    ]);
    expect(crdProblems(scaledObject({ triggers: [{ type: "kafka", metadata: {}, authenticationRef: { name: "x", kind: "Secret" } }] })).join()).toMatch(
      /authenticationRef.kind: must be one of "TriggerAuthentication", "ClusterTriggerAuthentication"/,
    );
    expect(crdProblems({ ...scaledObject({}), metadata: { name: "Not_A_Name" } })).toEqual(['ScaledObject.metadata.name: not a DNS subdomain: "Not_A_Name"']);
    expect(crdProblems({ ...scaledObject({}), apiVersion: "keda.sh/v1" })).toEqual(["ScaledObject: keda.sh/v1 is not a served version of keda.sh/ScaledObject (v1alpha1)"]);
  });

  it("evaluates the CRD's CEL rule: minReplicaCount <= maxReplicaCount (default 100)", () => {
    expect(crdProblems(scaledObject({ minReplicaCount: 4, maxReplicaCount: 3 }))).toEqual(["ScaledObject.spec: minReplicaCount must be less than or equal to maxReplicaCount"]);
    expect(crdProblems(scaledObject({ minReplicaCount: 101 }))).toEqual(["ScaledObject.spec: minReplicaCount must be less than or equal to maxReplicaCount"]);
    expect(crdProblems(scaledObject({ minReplicaCount: 100 }))).toEqual([]);
  });

  it("refuses schema keywords, formats and CEL rules it does not implement, rather than skip them", () => {
    expect(() => checkSupported({ type: "object", oneOf: [] })).toThrow(UnsupportedSchema);
    expect(() => checkSupported({ type: "string", format: "uri" })).toThrow(/format uri/);
    expect(() => checkSupported({ type: "object", "x-kubernetes-validations": [{ rule: "self.a == 1" }] })).toThrow(/CEL rule not implemented: self.a == 1/);
    // The KEDA CRDs load: every keyword they use is implemented.
    expect([...crds().keys()].sort()).toEqual(["keda.sh/ScaledObject", "keda.sh/TriggerAuthentication"]);
  });
});

describe("the Kafka scaler's parameters (keda struct tags)", () => {
  const parameters = kafkaScalerParameters();

  it("parses names, where KEDA reads them from, types and enums", () => {
    expect(parameters.get("lagThreshold")).toMatchObject({ goType: "int64", orders: new Set(["triggerMetadata"]), default: "10" });
    expect(parameters.get("bootstrapServers")).toMatchObject({ goType: "[]string", orders: new Set(["triggerMetadata", "resolvedEnv"]), optional: false });
    expect(parameters.get("sasl")).toMatchObject({ orders: new Set(["triggerMetadata", "authParams"]), enum: ["none", "plaintext", "scram_sha256", "scram_sha512", "oauthbearer", "gssapi"] });
    expect(parameters.get("password")?.orders).toEqual(new Set(["authParams"]));
    expect(parameters.size).toBeGreaterThan(30);
  });

  it("flags unknown keys, keys from the wrong place, bad values and missing required keys", () => {
    expect(parameterProblems({ bootstrapServers: "k:9092", consumerGroup: "g", lagTreshold: "5" }, "triggerMetadata")).toEqual(["lagTreshold: not a parameter of the Kafka scaler"]);
    expect(parameterProblems({ bootstrapServers: "k:9092", consumerGroup: "g", username: "u" }, "triggerMetadata")).toEqual([
      "username: the Kafka scaler does not read it from triggerMetadata (only authParams)",
    ]);
    expect(parameterProblems({ bootstrapServers: "k:9092", consumerGroup: "g", lagThreshold: "ten", tls: "yes", excludePersistentLag: "1" }, "triggerMetadata")).toEqual([
      'lagThreshold: must be an integer, got "ten"',
      'tls: must be one of enable, disable, got "yes"',
      'excludePersistentLag: must be true or false, got "1"',
    ]);
    expect(parameterProblems({ topic: "t" }, "triggerMetadata")).toEqual(["bootstrapServers: required", "consumerGroup: required"]);
    expect(parameterProblems({ lagThreshold: undefined }, "authParams")).toEqual(["lagThreshold: the Kafka scaler does not read it from authParams (only triggerMetadata)"]);
  });
});

describe.skipIf(toolsMissing)("KEDA lag autoscaling (autoscaling.*)", () => {
  // The sidecar's loader reads receiver TLS files: the Secret mounts a config names, stood in for.
  let tls: StandInTlsFiles;
  let ci: K8sObject[];
  beforeAll(() => {
    tls = standInTlsFiles();
    ci = render({ values: [CI] });
  });
  afterAll(() => tls?.remove());

  const settingsOf = (objects: K8sObject[]) => {
    const text = tls.rewrite(configOf(objects));
    const env = Object.fromEntries([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(([, n]) => [n!, `whsec_${"A".repeat(43)}=`]));
    return parseSettings(text, env, "autoscaling");
  };
  /** What the sidecar consumes, from its own loader: [group, topic] pairs (topic undefined: a pattern). */
  const sidecarTopics = (objects: K8sObject[], retries: boolean) => {
    const s = settingsOf(objects);
    const events = s.kafka.topicPattern !== undefined ? [[s.kafka.groupId, undefined]] : s.kafka.topics.map((t) => [s.kafka.groupId, t]);
    const retry = retries ? new RetryTiers(s.retry.topic, s.retry.tiersMs).topics().map((t) => [retryGroupOf(s.kafka.groupId), t]) : [];
    return [...events, ...retry];
  };

  it("renders nothing of KEDA by default, and the Deployment keeps its replicas", () => {
    const objects = render();
    expect(kinds(objects)).not.toContain("ScaledObject");
    expect(kinds(objects)).not.toContain("TriggerAuthentication");
    expect(find<Deployment>(objects, "Deployment").spec.replicas).toBe(2);
  });

  it("scales the chart's Deployment, which then leaves replicas to KEDA", () => {
    const so = scaledObjectOf(ci);
    const d = find<Deployment>(ci, "Deployment");
    expect(so.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: d.metadata.name });
    expect(d.spec).not.toHaveProperty("replicas");
    expect(so.spec).toMatchObject({ minReplicaCount: 2, maxReplicaCount: 8, pollingInterval: 15, cooldownPeriod: 600 });
    expect(so.spec.advanced).toEqual({
      horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 600, policies: [{ type: "Pods", value: 1, periodSeconds: 120 }] } } },
    });
  });

  it("watches the topics and consumer groups the sidecar's own loader reads from the rendered config", () => {
    expect(topicsOf(ci)).toEqual(sidecarTopics(ci, true));
    // Spelt out: the event topics on the group, then the retry topic and its tiers (30s, 60s = 1m, 90 = 90s, 6h; 1m once).
    expect(topicsOf(ci)).toEqual([
      ["orders-callbacks", "orders"],
      ["orders-callbacks", "payments"],
      ["orders-callbacks.retry", "orders-callbacks.retries"],
      ["orders-callbacks.retry", "orders-callbacks.retries.30s"],
      ["orders-callbacks.retry", "orders-callbacks.retries.1m"],
      ["orders-callbacks.retry", "orders-callbacks.retries.90s"],
      ["orders-callbacks.retry", "orders-callbacks.retries.6h"],
    ]);
    const settings = settingsOf(ci);
    for (const t of triggersOf(ci)) {
      const retry = t.metadata.consumerGroup === retryGroupOf(settings.kafka.groupId);
      expect(t.metadata).toMatchObject({
        bootstrapServers: settings.kafka.brokers.join(","),
        lagThreshold: "500",
        activationLagThreshold: "10",
        // from-beginning: true; the retry consumer always reads from the beginning.
        offsetResetPolicy: "earliest",
        sasl: SASL["scram-sha-256"],
        tls: "enable",
      });
      expect(t.metadata.excludePersistentLag, t.metadata.topic).toBe(retry ? "true" : undefined);
      expect(t.metadata).not.toHaveProperty("unsafeSsl");
    }
  });

  it("is valid against KEDA's CRDs and uses only parameters the Kafka scaler knows, with and without SASL and TLS", async () => {
    const on = ["autoscaling.enabled=true", "autoscaling.partitions=6"];
    const renders = {
      [CI]: ci,
      "defaults (no SASL, no TLS)": render({ set: on }),
      "defaults with the retry topics": render({ set: [...on, "autoscaling.includeRetryTopics=true"] }),
      "all-on (topic-pattern, existingSecret, TLS)": render({ values: ["ci/all-on-values.yaml"], set: on }),
      "SASL only": render({ values: ["ci/chart-secret-values.yaml"], set: on }),
    };
    for (const [source, objects] of Object.entries(renders)) {
      expect(await problemsOf(objects), source).toEqual([]);
    }
    expect(kinds(renders["defaults (no SASL, no TLS)"])).not.toContain("TriggerAuthentication");
    expect(kinds(renders["SASL only"])).toContain("TriggerAuthentication");
  });

  it("logs KEDA in with what the sidecar uses: the Secret key of its SASL password, the Secrets behind its TLS files", () => {
    const d = find<Deployment>(ci, "Deployment");
    const ta = find<TriggerAuthentication>(ci, "TriggerAuthentication");
    const settings = settingsOf(ci);
    const raw = (parse(configOf(ci)) as { pyfly: { callbacks: { kafka: { ssl: Record<string, string> } } } }).pyfly.callbacks.kafka.ssl;
    const bySecret = new Map(ta.spec.secretTargetRef!.map((r) => [r.parameter, { name: r.name, key: r.key }]));
    const byConfigMap = new Map(ta.spec.configMapTargetRef!.map((r) => [r.parameter, { name: r.name, key: r.key }]));
    expect([...bySecret.keys(), ...byConfigMap.keys()].sort()).toEqual(["ca", "cert", "key", "password", "username"]);

    // The password: the very Secret key the container's CALLBACK_KAFKA_SASL_PASSWORD comes from.
    const passwordRef = sidecarOf(d).env?.find((e) => e.name === "CALLBACK_KAFKA_SASL_PASSWORD")?.valueFrom?.secretKeyRef;
    expect(bySecret.get("password")).toEqual(passwordRef);
    const secret = find<{ metadata: { name: string }; data: Record<string, string> }>(ci, "Secret");
    expect(secret.metadata.name).toBe(passwordRef!.name);
    expect(Buffer.from(secret.data[passwordRef!.key]!, "base64").toString()).toBe("kafka-password-for-ci-only");

    // The files: the Secret keys mounted where the config points (items map user.crt to tls.crt).
    for (const [parameter, file] of [
      ["ca", "ca-file"],
      ["cert", "cert-file"],
      ["key", "key-file"],
    ] as const) {
      const source = fileSource(d, raw[file]!);
      expect(source, file).toMatchObject({ kind: "secret" });
      expect(bySecret.get(parameter), file).toEqual({ name: source!.name, key: source!.key });
    }
    expect(bySecret.get("cert")).toEqual({ name: "orders-callbacks", key: "user.crt" });

    // The username: no secret, from the chart's small ConfigMap.
    const cm = ci.find((o) => o.kind === "ConfigMap" && o.metadata.name === byConfigMap.get("username")!.name) as unknown as { data: Record<string, string> };
    expect(cm.data[byConfigMap.get("username")!.key]).toBe(settings.kafka.sasl.username);
    for (const t of triggersOf(ci)) expect(t.authenticationRef).toEqual({ name: ta.metadata.name });
  });

  it("needs no TriggerAuthentication without SASL or TLS files; maxReplicaCount defaults to the partitions", () => {
    const objects = render({ set: ["autoscaling.enabled=true", "autoscaling.partitions=3", "autoscaling.includeRetryTopics=true"] });
    expect(kinds(objects)).not.toContain("TriggerAuthentication");
    expect(objects.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name)).toEqual(["cbs-test-callback-sidecar"]);
    expect(scaledObjectOf(objects).spec).toMatchObject({ minReplicaCount: 1, maxReplicaCount: 3, pollingInterval: 30, cooldownPeriod: 300 });
    expect(scaledObjectOf(objects).spec).not.toHaveProperty("advanced");
    const [events, ...retries] = triggersOf(objects);
    expect(events).toEqual({
      type: "kafka",
      metadata: {
        bootstrapServers: "kafka:9092",
        consumerGroup: "callback-sidecar",
        topic: "domain-events",
        lagThreshold: "100",
        activationLagThreshold: "0",
        offsetResetPolicy: "latest",
      },
    });
    // The default tiers 10s, 1m, 10m, 1h, on the default retry topic "<group-id>.retry".
    expect(retries.map((t) => [t.metadata.consumerGroup, t.metadata.topic, t.authenticationRef])).toEqual(
      ["callback-sidecar.retry", "callback-sidecar.retry.10s", "callback-sidecar.retry.1m", "callback-sidecar.retry.10m", "callback-sidecar.retry.1h"].map((topic) => [
        "callback-sidecar.retry",
        topic,
        undefined,
      ]),
    );
    expect(topicsOf(objects)).toEqual(sidecarTopics(objects, true));
  });

  it("names the tier topics as the sidecar does, however the tiers are spelt", () => {
    for (const tiers of ['[90,"1.5m","60s","1m","2h","1500ms","2.5s","1H"," 2 m ",1.25]', "[]", '["1500ms",3600]']) {
      const objects = render({ set: ["autoscaling.enabled=true", "autoscaling.partitions=3", "autoscaling.includeRetryTopics=true"], setJson: [`config.retry.tiers=${tiers}`] });
      expect(topicsOf(objects), tiers).toEqual(sidecarTopics(objects, true));
    }
  });

  it("with topic-pattern, watches the group's lag on every topic: one trigger without a topic (ci/all-on-values.yaml)", () => {
    const objects = render({ values: ["ci/all-on-values.yaml"], set: ["autoscaling.enabled=true", "autoscaling.partitions=6"] });
    expect(triggersOf(objects)).toHaveLength(1);
    expect(topicsOf(objects)).toEqual(sidecarTopics(objects, false));
    expect(triggersOf(objects)[0]!.metadata).not.toHaveProperty("topic");
    // TLS with a CA from extraVolumes, SASL with the password in the existingSecret.
    const ta = find<TriggerAuthentication>(objects, "TriggerAuthentication");
    expect(ta.spec.secretTargetRef).toEqual([
      { parameter: "password", name: "callback-sidecar-hmac", key: "CALLBACK_KAFKA_SASL_PASSWORD" },
      { parameter: "ca", name: "kafka-client-tls", key: "ca.crt" },
    ]);
    expect(triggersOf(objects)[0]!.metadata).toMatchObject({ sasl: "scram_sha512", tls: "enable", offsetResetPolicy: "earliest" });
  });

  it("reads a CA from a ConfigMap (or a subPath mount), and skips verification where the sidecar does", () => {
    const objects = render({
      set: [
        "autoscaling.enabled=true",
        "autoscaling.partitions=3",
        "config.kafka.ssl.enabled=true",
        "config.kafka.ssl.reject-unauthorized=false",
        "config.kafka.ssl.ca-file=/etc/kafka-ca/bundle.pem",
        "config.kafka.ssl.cert-file=/etc/kafka-client.crt",
        "extraVolumes[0].name=kafka-ca",
        "extraVolumes[0].configMap.name=kafka-ca-bundle",
        "extraVolumes[1].name=kafka-client",
        "extraVolumes[1].secret.secretName=kafka-client",
        "extraVolumeMounts[0].name=kafka-ca",
        "extraVolumeMounts[0].mountPath=/etc/kafka-ca",
        "extraVolumeMounts[1].name=kafka-client",
        "extraVolumeMounts[1].mountPath=/etc/kafka-client.crt",
        "extraVolumeMounts[1].subPath=client.crt",
      ],
    });
    expect(triggersOf(objects)[0]!.metadata).toMatchObject({ tls: "enable", unsafeSsl: "true" });
    const ta = find<TriggerAuthentication>(objects, "TriggerAuthentication");
    expect(ta.spec).toEqual({
      configMapTargetRef: [{ parameter: "ca", name: "kafka-ca-bundle", key: "bundle.pem" }],
      secretTargetRef: [{ parameter: "cert", name: "kafka-client", key: "client.crt" }],
    });
    const d = find<Deployment>(objects, "Deployment");
    expect(fileSource(d, "/etc/kafka-ca/bundle.pem")).toEqual({ kind: "configMap", name: "kafka-ca-bundle", key: "bundle.pem" });
    expect(fileSource(d, "/etc/kafka-client.crt")).toEqual({ kind: "secret", name: "kafka-client", key: "client.crt" });
  });

  it("references a TriggerAuthentication of your own instead of rendering one (autoscaling.authenticationRef)", async () => {
    const objects = render({
      values: [CI],
      set: ["autoscaling.authenticationRef.name=kafka-keda", "autoscaling.authenticationRef.kind=ClusterTriggerAuthentication"],
    });
    expect(kinds(objects)).not.toContain("TriggerAuthentication");
    expect(objects.map((o) => o.metadata.name)).not.toContain("cbs-test-callback-sidecar-keda");
    for (const t of triggersOf(objects)) {
      expect(t.authenticationRef).toEqual({ name: "kafka-keda", kind: "ClusterTriggerAuthentication" });
      // What the sidecar's config says still goes in the metadata.
      expect(t.metadata).toMatchObject({ sasl: "scram_sha256", tls: "enable" });
    }
    expect(await problemsOf(objects)).toEqual([]);
  });

  it("scales to zero only with the retry topics watched, and then counts their lag whole", async () => {
    const objects = render({ set: ["autoscaling.enabled=true", "autoscaling.partitions=4", "autoscaling.minReplicaCount=0", "autoscaling.includeRetryTopics=true"] });
    expect(scaledObjectOf(objects).spec).toMatchObject({ minReplicaCount: 0, maxReplicaCount: 4 });
    // At zero replicas no offset moves: excluding persistent lag would never wake the Deployment.
    for (const t of triggersOf(objects)) expect(t.metadata).not.toHaveProperty("excludePersistentLag");
    expect(triggersOf(objects)).toHaveLength(6);
    expect(await problemsOf(objects)).toEqual([]);
  });
});

describe.skipIf(toolsMissing)("autoscaling values the chart refuses", () => {
  const fails = (set: string[], setJson: string[] = []) => {
    const r = helmTemplate({ set, setJson });
    expect(r.ok, `expected failure for ${set.join(" ")}`).toBe(false);
    return r.stderr;
  };
  const on = ["autoscaling.enabled=true", "autoscaling.partitions=4"];

  it.each([
    [["autoscaling.enabled=true"], /autoscaling.partitions is required with autoscaling.enabled/],
    [[...on, "autoscaling.maxReplicaCount=5"], /autoscaling.maxReplicaCount 5 exceeds autoscaling.partitions 4: a replica beyond the partition count gets no partition/],
    [[...on, "autoscaling.minReplicaCount=5"], /autoscaling.minReplicaCount 5 exceeds maxReplicaCount 4/],
    [[...on, "autoscaling.minReplicaCount=0"], /minReplicaCount 0 scales to zero replicas.*set autoscaling.includeRetryTopics/],
    [[...on, "deployment.enabled=false"], /autoscaling.enabled scales the chart's own Deployment, and deployment.enabled is false/],
    [[...on, "config.kafka.topics=null"], /there is no event topic to watch/],
    [[...on, "config.kafka.ssl.enabled=true", "config.kafka.ssl.ca-file=/etc/ssl/kafka-ca.crt"], /config.kafka.ssl.ca-file \/etc\/ssl\/kafka-ca.crt is not a key of a Secret or ConfigMap/],
    [[...on, "config.kafka.sasl.mechanism=plain", "config.kafka.sasl.username=${KAFKA_USER}", "secret.kafkaSaslPassword=x"], /username is a \$\{...\} placeholder/],
    [[...on, "autoscaling.lagThreshold=0"], /\/autoscaling\/lagThreshold/],
    [[...on, "autoscaling.pollingInterval=0"], /\/autoscaling\/pollingInterval/],
    [[...on, "autoscaling.authenticationRef.kind=Secret"], /\/autoscaling\/authenticationRef\/kind/],
    [[...on, "autoscaling.behavior.scaleDownn.x=1"], /additional properties 'scaleDownn' not allowed/],
    [[...on, "autoscaling.bogus=1"], /additional properties 'bogus' not allowed/],
  ])("%s", (set, message) => {
    expect(fails(set)).toMatch(message);
  });

  it("refuses a tier the chart cannot name as the sidecar would (not whole milliseconds)", () => {
    expect(fails([...on, "autoscaling.includeRetryTopics=true"], ['config.retry.tiers=["1.0005s"]'])).toMatch(/not a whole number of milliseconds/);
  });

  it("accepts a SASL username placeholder with a TriggerAuthentication of your own", () => {
    const set = [...on, "config.kafka.sasl.mechanism=plain", "config.kafka.sasl.username=${KAFKA_USER}", "secret.kafkaSaslPassword=x", "autoscaling.authenticationRef.name=mine"];
    expect(helmTemplate({ set }).ok).toBe(true);
  });
});
