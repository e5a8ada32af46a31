import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import { find, helmTemplate, render, toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders } from "./lib/renders.js";

type Container = {
  name: string;
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: unknown[];
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] }; seccompProfile?: { type: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string }[];
};
type PodSpec = {
  enableServiceLinks?: boolean;
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  terminationGracePeriodSeconds?: number;
  volumes?: { name: string; emptyDir?: unknown; configMap?: { name: string } }[];
};
type Workload = K8sObject & { spec: { template: { metadata: { annotations?: Record<string, string> }; spec: PodSpec } } };

const sidecarOf = (d: Workload) => d.spec.template.spec.containers.find((c) => c.name === "callback-sidecar")!;
const configOf = (objects: K8sObject[]) => {
  const cm = objects.find((o) => o.kind === "ConfigMap" && "application.yml" in ((o as { data?: object }).data ?? {})) as { data: Record<string, string> } | undefined;
  return cm?.data["application.yml"];
};
const durationSeconds = (s: string) => Number(/^(\d+)s$/.exec(s)?.[1]);

describe.skipIf(toolsMissing)("helm chart and manifests: what every pod running the sidecar gets", () => {
  let renders: Map<string, K8sObject[]>;
  beforeAll(() => {
    renders = allRenders();
  });

  const workloads = () =>
    [...renders].flatMap(([source, objects]) =>
      objects.filter((o): o is Workload => o.kind === "Deployment" && sidecarOf(o as Workload) !== undefined).map((d) => ({ source, objects, d })),
    );

  it("finds the sidecar in every render", () => {
    expect(workloads().map((w) => w.source)).toEqual([...renders.keys()]);
  });

  it("hardens the container: non-root, read-only root, no capabilities, seccomp, no escalation", () => {
    for (const { source, d } of workloads()) {
      const sc = sidecarOf(d).securityContext ?? {};
      const pod = d.spec.template.spec.securityContext ?? {};
      expect(sc.runAsNonRoot, source).toBe(true);
      expect(sc.readOnlyRootFilesystem, source).toBe(true);
      expect(sc.allowPrivilegeEscalation, source).toBe(false);
      expect(sc.capabilities?.drop, source).toContain("ALL");
      expect(sc.seccompProfile?.type ?? pod.seccompProfile?.type, source).toBe("RuntimeDefault");
    }
  });

  it("gives /tmp an emptyDir and mounts application.yml where PYFLY_CONFIG_FILE points", () => {
    for (const { source, d } of workloads()) {
      const c = sidecarOf(d);
      const volumes = d.spec.template.spec.volumes ?? [];
      const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
      expect(volumes.find((v) => v.name === tmp?.name)?.emptyDir, source).toBeDefined();
      const file = c.env?.find((e) => e.name === "PYFLY_CONFIG_FILE")?.value ?? "";
      const mount = c.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
      expect(volumes.find((v) => v.name === mount?.name)?.configMap, source).toBeDefined();
      expect(file.endsWith("/application.yml"), source).toBe(true);
    }
  });

  it("probes /healthz and /readyz on the port the config listens on", () => {
    for (const { source, objects, d } of workloads()) {
      const c = sidecarOf(d);
      const config = parse(configOf(objects)!) as { pyfly: { callbacks: { server: { port: number } } } };
      const port = c.ports?.find((p) => p.name === "cb-admin");
      expect(port?.containerPort, source).toBe(config.pyfly.callbacks.server.port);
      expect(c.livenessProbe?.httpGet, source).toEqual({ path: "/healthz", port: "cb-admin" });
      if (c.readinessProbe) expect(c.readinessProbe.httpGet, source).toEqual({ path: "/readyz", port: "cb-admin" });
    }
  });

  it("lets the kubelet wait longer than the sidecar's shutdown-grace", () => {
    for (const { source, objects, d } of workloads()) {
      const config = parse(configOf(objects)!) as { pyfly: { callbacks: { "shutdown-grace": string } } };
      const grace = durationSeconds(config.pyfly.callbacks["shutdown-grace"]);
      expect(d.spec.template.spec.terminationGracePeriodSeconds, source).toBeGreaterThan(grace);
    }
  });

  it("keeps secrets out of the ConfigMap: placeholders there, values only in the Secret", () => {
    const objects = renders.get("helm ci/chart-secret-values.yaml")!;
    const config = configOf(objects)!;
    const secret = find<{ data: Record<string, string> }>(objects, "Secret");
    const values = Object.values(secret.data).map((v) => Buffer.from(v, "base64").toString("utf8"));
    expect(values.length).toBe(5);
    for (const v of values) expect(config).not.toContain(v);
    expect(config).toContain("secret: ${CALLBACK_SECRET_ACME}");
    expect(config).toContain("token: ${CALLBACK_EXECUTIONS_TOKEN}");
    expect(config).toContain("${CALLBACK_SECRET_ACME_ADDITIONAL_1}");
    expect(config).toContain("password: ${CALLBACK_KAFKA_SASL_PASSWORD}");
    // Every placeholder has its env var, from the Secret the chart made.
    const d = find<Workload>(objects, "Deployment");
    const env = new Map(sidecarOf(d).env?.map((e) => [e.name, e.valueFrom?.secretKeyRef]));
    for (const [, name] of config.matchAll(/\$\{([A-Z0-9_]+)\}/g)) {
      expect(env.get(name!), name).toEqual({ name: (secret as unknown as K8sObject).metadata.name, key: name });
    }
  });

  it("keeps Kubernetes service-link variables out of every pod spec", () => {
    for (const { source, d } of workloads()) expect(d.spec.template.spec.enableServiceLinks, source).toBe(false);
  });

  it("leaves /executions disabled by default, and enables it only behind the Secret's token", () => {
    // One value that is valid wherever a placeholder sits (a 32-byte whsec_ key is a fine token too).
    const value = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
    const settingsOf = (objects: K8sObject[]) => {
      const text = configOf(objects)!;
      const env = Object.fromEntries([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(([, name]) => [name!, value]));
      return parseSettings(text, env, "chart");
    };
    expect(settingsOf(render()).server.executions).toEqual({ enabled: false, token: undefined, includePayloads: false });

    const objects = renders.get("helm ci/chart-secret-values.yaml")!;
    expect(configOf(objects)).toContain("token: ${CALLBACK_EXECUTIONS_TOKEN}");
    expect(settingsOf(objects).server.executions).toEqual({ enabled: true, token: value, includePayloads: false });
    const secret = find<{ data: Record<string, string> }>(objects, "Secret");
    expect(Buffer.from(secret.data.CALLBACK_EXECUTIONS_TOKEN!, "base64").toString()).toBe("executions-token-for-ci-only-3f9a");
    expect(configOf(objects)).not.toContain("executions-token-for-ci-only-3f9a");

    const allOn = renders.get("helm ci/all-on-values.yaml")!;
    expect(settingsOf(allOn).server.executions).toMatchObject({ enabled: true, includePayloads: true });
    const ref = sidecarOf(find<Workload>(allOn, "Deployment")).env?.find((e) => e.name === "CALLBACK_EXECUTIONS_TOKEN")?.valueFrom?.secretKeyRef;
    expect(ref).toEqual({ name: "callback-sidecar-hmac", key: "CALLBACK_EXECUTIONS_TOKEN" });
  });

  it("reads an existingSecret instead of creating one", () => {
    const objects = renders.get("helm ci/all-on-values.yaml")!;
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    const refs = sidecarOf(find<Workload>(objects, "Deployment")).env?.flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : []));
    expect(new Set(refs)).toEqual(new Set(["callback-sidecar-hmac"]));
  });

  it("rolls the pods when the config or the chart's Secret changes", () => {
    const annotations = (set: string[]) => find<Workload>(render({ values: ["ci/chart-secret-values.yaml"], set }), "Deployment").spec.template.metadata.annotations!;
    const base = annotations([]);
    const config = annotations(["config.http.timeout=3s"]);
    const secret = annotations(["secret.hmac.initech=rotated"]);
    expect(config["checksum/callback-sidecar-config"]).not.toBe(base["checksum/callback-sidecar-config"]);
    expect(config["checksum/callback-sidecar-secret"]).toBe(base["checksum/callback-sidecar-secret"]);
    expect(secret["checksum/callback-sidecar-secret"]).not.toBe(base["checksum/callback-sidecar-secret"]);
  });

  it("adds the sidecar to another chart's pods with the subchart's names and values", () => {
    const objects = renders.get("helm examples/orders-api")!;
    const d = find<Workload>(objects, "Deployment");
    expect(d.spec.template.spec.containers.map((c) => c.name)).toEqual(["orders-api", "callback-sidecar"]);
    const cm = find(objects, "ConfigMap");
    expect(d.spec.template.spec.volumes?.find((v) => v.name === "callback-sidecar-config")?.configMap?.name).toBe(cm.metadata.name);
    expect(sidecarOf(d).readinessProbe).toBeUndefined();
    expect(find<{ spec: { selector: object } }>(objects, "Service").spec.selector).toEqual({ "app.kubernetes.io/name": "orders-api" });
    expect(objects.map((o) => o.kind)).not.toContain("PodDisruptionBudget");
  });
});

describe.skipIf(toolsMissing)("values.schema.json and the templates refuse bad values", () => {
  const fails = (set: string[], values: string[] = []) => {
    const r = helmTemplate({ set, values });
    expect(r.ok, `expected failure for ${set.join(" ")}`).toBe(false);
    return r.stderr;
  };

  it.each([
    [["config.kafka.bogus=1"], /additional properties 'bogus' not allowed/],
    [["config.http.timeout=soon"], /\/config\/http\/timeout/],
    [["securityContext.readOnlyRootFilesystem=false"], /value must be true/],
    [["securityContext.allowPrivilegeEscalation=true"], /value must be false/],
    [["adminPort=70000"], /adminPort/],
    [["config.kafka.ordering=random"], /ordering/],
    [["image.digest=latest"], /digest/],
    [["tenants[0].tenant-id=acme", "tenants[0].name=A", "tenants[0].secret=plaintext"], /additional properties 'secret' not allowed/],
    [["prometheusRule.failureRatio=2"], /failureRatio/],
  ])("%s", (set, message) => {
    expect(fails(set)).toMatch(message);
  });

  it("requires a secret for every tenant, and no secret without a tenant", () => {
    expect(fails(["tenants[0].tenant-id=acme", "tenants[0].name=A"])).toMatch(/secret.hmac.acme is required/);
    expect(fails(["secret.hmac.ghost=x"])).toMatch(/secret.hmac.ghost has no tenant/);
  });

  it("refuses tenant ids that would share an env var", () => {
    const set = ["tenants[0].tenant-id=a-b", "tenants[0].name=A", "tenants[1].tenant-id=a.b", "tenants[1].name=B", "secret.hmac.a-b=x", "secret.hmac.a\\.b=y"];
    expect(fails(set)).toMatch(/both map to env CALLBACK_SECRET_A_B/);
  });

  it("refuses executionsEndpoint.enabled without a token to put in the Secret", () => {
    expect(fails(["executionsEndpoint.enabled=true"])).toMatch(/secret.executionsToken is required when executionsEndpoint.enabled is true/);
    expect(helmTemplate({ set: ["executionsEndpoint.enabled=true", "secret.existingSecret=mine"] }).ok).toBe(true);
    expect(fails(["executionsEndpoint.token=x"])).toMatch(/additional properties 'token' not allowed/);
  });

  it("refuses secret rotation with the pyfly scheme, which signs with one secret, and allows it with pyfly-timestamped", () => {
    const rotating = ["tenants[0].tenant-id=acme", "tenants[0].name=A", "secret.hmac.acme={a,b}"];
    expect(fails(rotating)).toMatch(/needs signing-scheme pyfly-timestamped or standard-webhooks/);
    expect(helmTemplate({ set: [...rotating, "tenants[0].signing-scheme=pyfly-timestamped"] }).ok).toBe(true);
  });
});
