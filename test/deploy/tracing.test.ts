import { envDetector } from "@opentelemetry/resources";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import { find, helmTemplate, render, toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders, renderHostExample } from "./lib/renders.js";
import { describe as name, strictProblems } from "./lib/strict-validate.js";
import { standInTlsFiles, type StandInTlsFiles } from "./lib/tls-files.js";

/*
 * OpenTelemetry tracing as the chart and the kustomize example deploy it: pyfly.callbacks.tracing in
 * the rendered application.yml, the standard OTEL_* variables in the container, the OTLP headers
 * (which may hold a token) only from a Secret, and the NetworkPolicy letting spans out.
 */

type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
};
type Container = { name: string; env?: EnvVar[] };
type Workload = K8sObject & { spec: { template: { spec: { containers: Container[] } } } };
type Peer = { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: { matchLabels?: Record<string, string> } };
type NetworkPolicy = K8sObject & { spec: { egress: { ports?: { port: number | string; protocol: string }[]; to?: Peer[] }[] } };
type Callbacks = { tracing?: { enabled: boolean; "send-trace-context": boolean } };

const sidecarOf = (objects: K8sObject[]) =>
  find<Workload>(objects, "Deployment").spec.template.spec.containers.find((c) => c.name === "callback-sidecar")!;
const configOf = (objects: K8sObject[]) => {
  const cm = objects.find((o) => o.kind === "ConfigMap" && "application.yml" in ((o as { data?: object }).data ?? {}));
  return (cm as unknown as { data: Record<string, string> }).data["application.yml"]!;
};
const callbacksOf = (objects: K8sObject[]) => (parse(configOf(objects)) as { pyfly: { callbacks: Callbacks } }).pyfly.callbacks;
const otelEnv = (c: Container) => (c.env ?? []).filter((e) => e.name.startsWith("OTEL_") || e.name.startsWith("CALLBACK_OTEL_"));
const otlpPorts = (objects: K8sObject[]) =>
  find<NetworkPolicy>(objects, "NetworkPolicy").spec.egress.filter((rule) => rule.ports?.some((p) => p.port === 4318));

const POD = { "metadata.name": "cbs-test-7d9f-x2x4q", "metadata.namespace": "shop" } as Record<string, string>;

/**
 * The container's environment as the process sees it: literal values and field references, with
 * $(VAR) expanded from the variables defined before (and $$ unescaped) as the kubelet does.
 * Secret references are left out: tests add what they need.
 */
function processEnv(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = e.value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, ref?: string) =>
        match === "$$" ? "$" : ref !== undefined && ref in env ? env[ref]! : match,
      );
    } else if (e.valueFrom?.fieldRef) {
      env[e.name] = POD[e.valueFrom.fieldRef.fieldPath]!;
    }
  }
  return env;
}

/** The resource attributes the OpenTelemetry SDK reads from that environment (its own parser). */
function resourceAttributesFrom(env: Record<string, string>): Record<string, unknown> {
  const saved = { attributes: process.env.OTEL_RESOURCE_ATTRIBUTES, service: process.env.OTEL_SERVICE_NAME };
  try {
    delete process.env.OTEL_SERVICE_NAME;
    process.env.OTEL_RESOURCE_ATTRIBUTES = env.OTEL_RESOURCE_ATTRIBUTES ?? "";
    if (env.OTEL_SERVICE_NAME !== undefined) process.env.OTEL_SERVICE_NAME = env.OTEL_SERVICE_NAME;
    return envDetector.detect().attributes ?? {};
  } finally {
    for (const [key, value] of [
      ["OTEL_RESOURCE_ATTRIBUTES", saved.attributes],
      ["OTEL_SERVICE_NAME", saved.service],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

const SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const placeholders = (text: string) => Object.fromEntries([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(([, n]) => [n!, SECRET]));

describe.skipIf(toolsMissing)("tracing in the chart and the kustomize example", () => {
  let renders: Map<string, K8sObject[]>;
  let tls: StandInTlsFiles;
  beforeAll(() => {
    renders = allRenders();
    tls = standInTlsFiles();
  });
  afterAll(() => tls?.remove());

  /** What the sidecar runs with: the rendered config, loaded with the container's environment. */
  const settingsOf = (objects: K8sObject[]) => {
    const text = tls.rewrite(configOf(objects));
    return parseSettings(text, { ...placeholders(text), ...processEnv(sidecarOf(objects)) }, "tracing");
  };

  it("is off by default: no tracing key, no OTEL_* variable, no OTLP egress rule", () => {
    const defaults = renders.get("helm (defaults)")!;
    expect(callbacksOf(defaults)).not.toHaveProperty("tracing");
    expect(otelEnv(sidecarOf(defaults))).toEqual([]);
    expect(settingsOf(defaults).tracing).toEqual({ enabled: false, protocol: "http/protobuf" });
    expect(otlpPorts(render({ set: ["networkPolicy.enabled=true"] }))).toEqual([]);
  });

  it("renders the config keys and the OTEL_* variables for a Collector Service (ci/all-on-values.yaml)", () => {
    const objects = renders.get("helm ci/all-on-values.yaml")!;
    expect(callbacksOf(objects).tracing).toEqual({ enabled: true, "send-trace-context": false });
    expect(otelEnv(sidecarOf(objects))).toEqual([
      { name: "CALLBACK_OTEL_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "CALLBACK_OTEL_POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://otel-collector.observability:4318" },
      { name: "OTEL_EXPORTER_OTLP_PROTOCOL", value: "http/protobuf" },
      { name: "OTEL_SERVICE_NAME", value: "payments-callbacks" },
      {
        name: "OTEL_RESOURCE_ATTRIBUTES",
        value:
          "k8s.namespace.name=$(CALLBACK_OTEL_POD_NAMESPACE),k8s.pod.name=$(CALLBACK_OTEL_POD_NAME),k8s.container.name=callback-sidecar," +
          "deployment.environment.name=prod,service.namespace=payments",
      },
      { name: "OTEL_TRACES_SAMPLER", value: "parentbased_traceidratio" },
      { name: "OTEL_TRACES_SAMPLER_ARG", value: "0.1" },
      { name: "OTEL_EXPORTER_OTLP_HEADERS", valueFrom: { secretKeyRef: { name: "otlp-credentials", key: "headers" } } },
    ]);
    // The sidecar's loader: tracing on, the protocol from the env, acme's own send-trace-context over the default.
    const settings = settingsOf(objects);
    expect(settings.tracing).toEqual({ enabled: true, protocol: "http/protobuf" });
    expect(settings.configs.map((c) => [c.tenant_id, c.send_trace_context])).toEqual([
      ["acme", true],
      ["globex-eu", false],
    ]);
    // The SDK's own parser finds the pod, as the kubelet expands it.
    expect(resourceAttributesFrom(processEnv(sidecarOf(objects)))).toEqual({
      "k8s.namespace.name": "shop",
      "k8s.pod.name": POD["metadata.name"],
      "k8s.container.name": "callback-sidecar",
      "deployment.environment.name": "prod",
      "service.namespace": "payments",
      "service.name": "payments-callbacks",
    });
  });

  it("renders a Collector in the pod over http/json, trace context on by default (ci/tracing-values.yaml)", () => {
    const objects = renders.get("helm ci/tracing-values.yaml")!;
    expect(callbacksOf(objects).tracing).toEqual({ enabled: true, "send-trace-context": true });
    const env = processEnv(sidecarOf(objects));
    expect(env).toMatchObject({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_TRACES_SAMPLER: "always_on" });
    for (const unset of ["OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_HEADERS"]) expect(env, unset).not.toHaveProperty(unset);
    const settings = settingsOf(objects);
    expect(settings.tracing).toEqual({ enabled: true, protocol: "http/json" });
    expect(settings.configs.map((c) => [c.tenant_id, c.send_trace_context])).toEqual([
      ["initech", true],
      ["umbrella", false],
    ]);
    // Pod-local traffic: the NetworkPolicy needs no OTLP rule (and opens none).
    expect(otlpPorts(objects)).toEqual([]);
  });

  it("lets the spans through the NetworkPolicy to networkPolicy.otlp's peers and ports", () => {
    expect(otlpPorts(renders.get("helm ci/all-on-values.yaml")!)).toEqual([
      {
        ports: [{ port: 4318, protocol: "TCP" }],
        to: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": "otel-collector" } },
          },
        ],
      },
    ]);
    // No peers: the port to anywhere. Another port: that one (e.g. an https backend).
    const tracing = ["networkPolicy.enabled=true", "tracing.enabled=true", "tracing.otlpEndpoint=https://otlp.vendor.example"];
    const egress = find<NetworkPolicy>(render({ set: [...tracing, "networkPolicy.otlp.ports={443}"] }), "NetworkPolicy").spec.egress;
    expect(egress.at(-1)).toEqual({ ports: [{ port: 443, protocol: "TCP" }] });
    expect(otlpPorts(render({ set: tracing }))).toEqual([{ ports: [{ port: 4318, protocol: "TCP" }] }]);
  });

  it("takes the OTLP headers only from a Secret, in every render", () => {
    const extra = render({ set: ["tracing.enabled=true", "tracing.headersSecret.name=otlp", "tracing.headersSecret.key=h"] });
    const sources = [...renders, ["helm tracing.headersSecret", extra] as const];
    let seen = 0;
    for (const [source, objects] of sources) {
      for (const d of objects.filter((o): o is Workload => o.kind === "Deployment")) {
        for (const c of d.spec.template.spec.containers) {
          for (const e of (c.env ?? []).filter((v) => /^OTEL_EXPORTER_OTLP_(TRACES_)?HEADERS$/.test(v.name))) {
            seen++;
            expect(e.value, `${source} ${c.name}`).toBeUndefined();
            expect(e.valueFrom?.secretKeyRef, `${source} ${c.name}`).toBeDefined();
          }
        }
      }
    }
    // all-on, the kustomize example and the render above.
    expect(seen).toBe(3);
    expect(sidecarOf(extra).env).toContainEqual({ name: "OTEL_EXPORTER_OTLP_HEADERS", valueFrom: { secretKeyRef: { name: "otlp", key: "h" } } });
  });

  it("percent-encodes resourceAttributes so the SDK reads them back exactly, $ included", () => {
    const objects = render({
      set: ["tracing.enabled=true", "tracing.resourceAttributes.team=pay\\,ments=a%b $(CALLBACK_OTEL_POD_NAME) $$", "tracing.resourceAttributes.k8s\\.pod\\.name=override"],
    });
    const attributes = resourceAttributesFrom(processEnv(sidecarOf(objects)));
    expect(attributes).toMatchObject({ team: "pay,ments=a%b $(CALLBACK_OTEL_POD_NAME) $$", "k8s.pod.name": "override", "k8s.namespace.name": "shop" });
  });

  it("gives the sidecar in another chart's pods the same variables, and the app's container none", async () => {
    const objects = renderHostExample([
      "callback-sidecar.tracing.enabled=true",
      "callback-sidecar.tracing.otlpEndpoint=http://localhost:4318",
      "callback-sidecar.tracing.serviceName=orders-api-callbacks",
      "callback-sidecar.tracing.headersSecret.name=otlp",
    ]);
    const d = find<Workload>(objects, "Deployment");
    expect(otelEnv(d.spec.template.spec.containers.find((c) => c.name === "orders-api")!)).toEqual([]);
    const env = processEnv(sidecarOf(objects));
    expect(env).toMatchObject({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_SERVICE_NAME: "orders-api-callbacks",
    });
    expect(sidecarOf(objects).env).toContainEqual({ name: "OTEL_EXPORTER_OTLP_HEADERS", valueFrom: { secretKeyRef: { name: "otlp", key: "otlp-headers" } } });
    expect(callbacksOf(objects).tracing).toEqual({ enabled: true, "send-trace-context": false });
    expect(settingsOf(objects).tracing).toEqual({ enabled: true, protocol: "http/protobuf" });
    const problems: string[] = [];
    for (const object of objects) for (const p of await strictProblems(object)) problems.push(`${name(object)}: ${p}`);
    expect(problems).toEqual([]);
  });

  it("kustomize examples/tracing: tracing on with a Collector endpoint, the headers from the Secret, egress to the Collector", () => {
    const objects = renders.get("kustomize deploy/kustomize/examples/tracing")!;
    const c = sidecarOf(objects);
    const env = processEnv(c);
    expect(env).toMatchObject({
      PYFLY_CALLBACKS_TRACING_ENABLED: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.observability:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    });
    expect(c.env).toContainEqual({
      name: "OTEL_EXPORTER_OTLP_HEADERS",
      valueFrom: { secretKeyRef: { name: "callback-sidecar-secrets", key: "OTEL_EXPORTER_OTLP_HEADERS", optional: true } },
    });
    const settings = settingsOf(objects);
    expect(settings.tracing).toEqual({ enabled: true, protocol: "http/protobuf" });
    expect(settings.configs.every((config) => !config.send_trace_context)).toBe(true);
    expect(resourceAttributesFrom(env)).toMatchObject({ "k8s.namespace.name": "shop", "k8s.pod.name": POD["metadata.name"] });
    expect(otlpPorts(objects)).toEqual([
      {
        ports: [{ port: 4318, protocol: "TCP" }],
        to: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": "otel-collector" } },
          },
        ],
      },
    ]);
  });
});

describe.skipIf(toolsMissing)("tracing values the chart refuses", () => {
  const fails = (set: string[]) => {
    const r = helmTemplate({ set });
    expect(r.ok, `expected failure for ${set.join(" ")}`).toBe(false);
    return r.stderr;
  };

  it.each([
    [["tracing.protocol=grpc"], /\/tracing\/protocol/],
    [["tracing.otlpEndpoint=otel-collector:4318"], /\/tracing\/otlpEndpoint/],
    [["tracing.sampler=jaeger_remote"], /\/tracing\/sampler/],
    [["tracing.sampler=traceidratio", "tracing.samplerArg=2"], /\/tracing\/samplerArg/],
    [["tracing.headers=authorization=Bearer x"], /additional properties 'headers' not allowed/],
    [["config.tracing.enabled=true"], /additional properties 'tracing' not allowed/],
    [["networkPolicy.otlp.ports={}"], /\/networkPolicy\/otlp\/ports/],
  ])("%s", (set, message) => {
    expect(fails(set)).toMatch(message);
  });

  it("keeps credentials out of the endpoint, and a sampler argument needs a ratio sampler", () => {
    expect(fails(["tracing.enabled=true", "tracing.otlpEndpoint=https://user:token@otlp.example"])).toMatch(/otlpEndpoint/);
    expect(fails(["tracing.enabled=true", "tracing.samplerArg=0.5"])).toMatch(/set tracing.sampler to traceidratio or parentbased_traceidratio/);
    expect(helmTemplate({ set: ["tracing.enabled=true", "tracing.sampler=traceidratio", "tracing.samplerArg=0.5"] }).ok).toBe(true);
  });
});
