import { beforeAll, describe, expect, it } from "vitest";
import { toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders } from "./lib/renders.js";
import { describe as name, strictProblems } from "./lib/strict-validate.js";

const deployment = (extra: Record<string, unknown> = {}, container: Record<string, unknown> = {}) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "x" },
  spec: {
    selector: { matchLabels: { app: "x" } },
    template: { metadata: { labels: { app: "x" } }, spec: { containers: [{ name: "c", image: "i:1", ...container }], ...extra } },
  },
});

describe("the strict validator itself", () => {
  it("accepts a valid object", async () => {
    expect(await strictProblems(deployment())).toEqual([]);
  });

  it("rejects unknown fields at any depth, which the plain schemas let through", async () => {
    expect(await strictProblems(deployment({}, { readOnlyRootFileSystem: true }))).toEqual([
      "Deployment.spec.template.spec.containers[0].readOnlyRootFileSystem: unknown field",
    ]);
    expect(await strictProblems(deployment({ securityContext: { runAsNonRot: true } }))).toEqual([
      "Deployment.spec.template.spec.securityContext.runAsNonRot: unknown field",
    ]);
  });

  it("validates KEDA's objects against their CRDs (test/deploy/keda) just as strictly", async () => {
    const so = { apiVersion: "keda.sh/v1alpha1", kind: "ScaledObject", metadata: { name: "x" }, spec: { scaleTargetRef: { name: "x" }, triggers: [{ type: "kafka", metadata: {}, metdata: {} }] } };
    expect(await strictProblems(so)).toEqual(["ScaledObject.spec.triggers[0].metdata: unknown field"]);
  });

  it("validates the Prometheus Operator CRDs strictly too", async () => {
    const sm = { apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "x" }, spec: { selector: {}, endpoints: [{ port: "a", intervall: "5s" }] } };
    expect(await strictProblems(sm)).toEqual(["ServiceMonitor.spec.endpoints[0].intervall: unknown field"]);
    const rule = { apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: "x" }, spec: { groups: [{ name: "g", rules: [{ alert: "A", expr: "1", forr: "5m" }] }] } };
    expect(await strictProblems(rule)).toEqual(["PrometheusRule.spec.groups[0].rules[0].forr: unknown field"]);
  });

  it("rejects wrong types and unknown kinds instead of skipping them", async () => {
    expect((await strictProblems(deployment({}, { ports: [{ containerPort: "8080" }] }))).join()).toMatch(/containerPort must be integer/);
    expect(await strictProblems({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "x" } })).toEqual([
      expect.stringMatching(/no schema for apiVersion example.com\/v1/),
    ]);
  });

  it("leaves free-form maps (labels, ConfigMap data) alone", async () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", labels: { anything: "goes" } }, data: { "a.yml": "b" } };
    expect(await strictProblems(cm)).toEqual([]);
  });
});

describe.skipIf(toolsMissing)("every object the chart and deploy/ produce", () => {
  let renders: Map<string, K8sObject[]>;
  beforeAll(() => {
    renders = allRenders();
  });

  it("is valid against the pinned Kubernetes and Prometheus Operator schemas, with no unknown field", async () => {
    const problems: string[] = [];
    let count = 0;
    for (const [source, objects] of renders) {
      for (const object of objects) {
        count++;
        for (const p of await strictProblems(object)) problems.push(`${source}: ${name(object)}: ${p}`);
      }
    }
    expect(problems).toEqual([]);
    expect(count).toBeGreaterThan(30);
  });

  it("covers every kind the chart can create, CRDs included", () => {
    const kinds = new Set([...renders.values()].flat().map((o) => o.kind));
    for (const kind of [
      "Deployment",
      "Service",
      "ServiceAccount",
      "ConfigMap",
      "Secret",
      "PodDisruptionBudget",
      "NetworkPolicy",
      "ServiceMonitor",
      "PrometheusRule",
      "PodMonitor",
      "ScaledObject",
      "TriggerAuthentication",
    ]) {
      expect(kinds, kind).toContain(kind);
    }
    const allOn = renders.get("helm ci/all-on-values.yaml")!.map((o) => o.kind).sort();
    expect(allOn).toEqual(["ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor"]);
  });
});
