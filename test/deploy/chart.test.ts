import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseSettings } from "../../src/config/load.js";
import { find, helmTemplate, render, toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders, renderHostExample } from "./lib/renders.js";
import { describe as name, strictProblems } from "./lib/strict-validate.js";
import { standInTlsFiles, type StandInTlsFiles } from "./lib/tls-files.js";

type Container = {
  name: string;
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: unknown[];
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] }; seccompProfile?: { type: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
};
type PodSpec = {
  enableServiceLinks?: boolean;
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  terminationGracePeriodSeconds?: number;
  volumes?: { name: string; emptyDir?: unknown; configMap?: { name: string }; secret?: { secretName: string } }[];
};
type Workload = K8sObject & { spec: { template: { metadata: { annotations?: Record<string, string> }; spec: PodSpec } } };

const sidecarOf = (d: Workload) => d.spec.template.spec.containers.find((c) => c.name === "callback-sidecar")!;
const configOf = (objects: K8sObject[]) => {
  const cm = objects.find((o) => o.kind === "ConfigMap" && "application.yml" in ((o as { data?: object }).data ?? {})) as { data: Record<string, string> } | undefined;
  return cm?.data["application.yml"];
};
const durationSeconds = (s: string) => Number(/^(\d+)s$/.exec(s)?.[1]);
const PROXY_ENV = ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"];
const proxyEnvOf = (c: Container) => (c.env ?? []).filter((e) => PROXY_ENV.includes(e.name.toUpperCase()));
const httpTlsOf = (objects: K8sObject[]) =>
  (parse(configOf(objects)!) as { pyfly: { callbacks: { http?: { tls?: Record<string, string> } } } }).pyfly.callbacks.http?.tls;

describe.skipIf(toolsMissing)("helm chart and manifests: what every pod running the sidecar gets", () => {
  let renders: Map<string, K8sObject[]>;
  // The sidecar's loader reads receiver TLS files: the Secret mounts a config names, stood in for.
  let tls: StandInTlsFiles;
  beforeAll(() => {
    renders = allRenders();
    tls = standInTlsFiles();
  });
  afterAll(() => tls?.remove());

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

  it("never gives a NetworkPolicy peer the policy's own pod labels (kustomize's includeSelectors would: DNS would match no pod)", () => {
    type Selector = { matchLabels?: Record<string, string> };
    type Rule = { to?: { podSelector?: Selector }[]; from?: { podSelector?: Selector }[] };
    type Policy = K8sObject & { spec: { podSelector: Selector; ingress?: Rule[]; egress?: Rule[] } };
    let policies = 0;
    for (const [source, objects] of renders) {
      for (const np of objects.filter((o): o is Policy => o.kind === "NetworkPolicy")) {
        policies++;
        const own = Object.entries(np.spec.podSelector.matchLabels ?? {});
        expect(own.length, source).toBeGreaterThan(0);
        for (const rule of [...(np.spec.egress ?? []), ...(np.spec.ingress ?? [])]) {
          for (const peer of [...(rule.to ?? []), ...(rule.from ?? [])]) {
            const labels = peer.podSelector?.matchLabels ?? {};
            expect(own.every(([k, v]) => labels[k] === v), `${source}: peer ${JSON.stringify(peer)}`).toBe(false);
          }
        }
      }
    }
    expect(policies).toBeGreaterThanOrEqual(4);
  });

  it("keeps Kubernetes service-link variables out of every pod spec", () => {
    for (const { source, d } of workloads()) expect(d.spec.template.spec.enableServiceLinks, source).toBe(false);
  });

  it("leaves /executions disabled by default, and enables it only behind the Secret's token", () => {
    // One value that is valid wherever a placeholder sits (a 32-byte whsec_ key is a fine token too).
    const value = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
    const settingsOf = (objects: K8sObject[]) => {
      const text = tls.rewrite(configOf(objects)!);
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
    // The tenants' Secret, the one holding the egress proxy's URL with its credentials, and the OTLP headers'.
    expect(new Set(refs)).toEqual(new Set(["callback-sidecar-hmac", "egress-proxy", "otlp-credentials"]));
  });

  it("routes webhooks through the egress proxy by env: a URL without credentials as a value, one with them from a Secret", () => {
    const deploymentOf = (source: string) => sidecarOf(find<Workload>(renders.get(source)!, "Deployment"));
    const noProxy = { name: "NO_PROXY", value: "localhost,127.0.0.1,.svc,.cluster.local,10.0.0.0/8" };
    expect(proxyEnvOf(deploymentOf("helm (defaults)"))).toEqual([]);

    const plain = renders.get("helm ci/egress-values.yaml")!;
    const url = "http://proxy.corp.example:3128";
    expect(proxyEnvOf(sidecarOf(find<Workload>(plain, "Deployment")))).toEqual([
      { name: "HTTPS_PROXY", value: url },
      { name: "HTTP_PROXY", value: url },
      noProxy,
    ]);
    // The chart leaves http.proxy unset, so the sidecar runs with this env.
    const text = tls.rewrite(configOf(plain)!);
    const env = Object.fromEntries(proxyEnvOf(sidecarOf(find<Workload>(plain, "Deployment"))).map((e) => [e.name, e.value]));
    const placeholders = Object.fromEntries([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(([, n]) => [n!, "whsec_" + "A".repeat(44)]));
    expect(parseSettings(text, { ...placeholders, ...env }, "egress").http.proxy).toEqual({
      http: url,
      https: url,
      noProxy: ["localhost", "127.0.0.1", ".svc", ".cluster.local", "10.0.0.0/8"],
    });

    const ref = { secretKeyRef: { name: "egress-proxy", key: "url" } };
    expect(proxyEnvOf(deploymentOf("helm ci/all-on-values.yaml"))).toEqual([
      { name: "HTTPS_PROXY", valueFrom: ref },
      { name: "HTTP_PROXY", valueFrom: ref },
      noProxy,
    ]);
  });

  it("mounts the receiverTls Secret read-only and whole (no subPath: it updates in place) where http.tls points", () => {
    for (const [source, path, secretName, keys] of [
      ["helm ci/all-on-values.yaml", "/etc/receiver-tls", "receiver-client-tls", ["ca-file", "client-cert-file", "client-key-file", "min-version"]],
      ["helm ci/egress-values.yaml", "/etc/callback-sidecar-receiver-tls", "receiver-ca", ["ca-file"]],
    ] as const) {
      const objects = renders.get(source)!;
      const d = find<Workload>(objects, "Deployment");
      const mounts = sidecarOf(d).volumeMounts?.filter((m) => m.name === "callback-sidecar-receiver-tls");
      expect(mounts, source).toEqual([{ name: "callback-sidecar-receiver-tls", mountPath: path, readOnly: true }]);
      const volume = d.spec.template.spec.volumes?.find((v) => v.name === "callback-sidecar-receiver-tls");
      expect(volume, source).toEqual({ name: "callback-sidecar-receiver-tls", secret: { secretName } });
      const httpTls = httpTlsOf(objects)!;
      expect(Object.keys(httpTls).sort(), source).toEqual([...keys]);
      for (const [key, file] of Object.entries(httpTls)) {
        if (key.endsWith("-file")) expect(file, `${source} ${key}`).toBe(`${path}/${{ "client-cert-file": "tls.crt", "client-key-file": "tls.key", "ca-file": "ca.crt" }[key]}`);
      }
    }
    const defaults = find<Workload>(renders.get("helm (defaults)")!, "Deployment");
    expect(defaults.spec.template.spec.volumes?.map((v) => v.name)).not.toContain("callback-sidecar-receiver-tls");
    expect(httpTlsOf(renders.get("helm (defaults)")!)).toBeUndefined();
    // A minimum version needs no Secret.
    expect(httpTlsOf(render({ set: ["receiverTls.minVersion=TLSv1.3"] }))).toEqual({ "min-version": "TLSv1.3" });
  });

  it("gives the sidecar in another chart's pods the same proxy env and receiver TLS mount, valid against the schemas", async () => {
    const objects = renderHostExample([
      "callback-sidecar.egressProxy.existingSecret=egress-proxy",
      "callback-sidecar.egressProxy.noProxy={.svc,.cluster.local}",
      "callback-sidecar.receiverTls.secretName=receiver-client-tls",
    ]);
    const d = find<Workload>(objects, "Deployment");
    const ref = { secretKeyRef: { name: "egress-proxy", key: "proxy-url" } };
    expect(proxyEnvOf(sidecarOf(d))).toEqual([
      { name: "HTTPS_PROXY", valueFrom: ref },
      { name: "HTTP_PROXY", valueFrom: ref },
      { name: "NO_PROXY", value: ".svc,.cluster.local" },
    ]);
    // Only the sidecar goes through the proxy: the app's container is left alone.
    expect(proxyEnvOf(d.spec.template.spec.containers.find((c) => c.name === "orders-api")!)).toEqual([]);
    const mountPath = "/etc/callback-sidecar-receiver-tls";
    expect(sidecarOf(d).volumeMounts).toContainEqual({ name: "callback-sidecar-receiver-tls", mountPath, readOnly: true });
    expect(d.spec.template.spec.volumes).toContainEqual({ name: "callback-sidecar-receiver-tls", secret: { secretName: "receiver-client-tls" } });
    expect(httpTlsOf(objects)).toEqual({ "client-cert-file": `${mountPath}/tls.crt`, "client-key-file": `${mountPath}/tls.key`, "ca-file": `${mountPath}/ca.crt` });
    const problems: string[] = [];
    for (const object of objects) for (const p of await strictProblems(object)) problems.push(`${name(object)}: ${p}`);
    expect(problems).toEqual([]);
  });

  it("rolls the pods when the config or the chart's Secret changes", () => {
    const annotations = (set: string[]) => find<Workload>(render({ values: ["ci/chart-secret-values.yaml"], set }), "Deployment").spec.template.metadata.annotations!;
    const base = annotations([]);
    const config = annotations(["config.http.timeout=3s"]);
    const secret = annotations(["secret.hmac.initech=rotated"]);
    const receiverTls = annotations(["receiverTls.secretName=receiver-client-tls"]);
    expect(config["checksum/callback-sidecar-config"]).not.toBe(base["checksum/callback-sidecar-config"]);
    expect(receiverTls["checksum/callback-sidecar-config"]).not.toBe(base["checksum/callback-sidecar-config"]);
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
    [["egressProxy.url=https://proxy.example:3128"], /\/egressProxy\/url/],
    [["egressProxy.noProxy={a b}"], /\/egressProxy\/noProxy\/0/],
    [["config.http.proxy.url=http://proxy.example:3128"], /additional properties 'proxy' not allowed/],
    [["receiverTls.minVersion=TLSv1.1"], /\/receiverTls\/minVersion/],
    [["config.http.tls.ca-file=/ca.crt"], /additional properties 'tls' not allowed/],
  ])("%s", (set, message) => {
    expect(fails(set)).toMatch(message);
  });

  it("keeps proxy credentials out of the pod spec, and refuses a receiverTls Secret that names no file or hides another mount", () => {
    expect(fails(["egressProxy.url=http://user:secret@proxy.example:3128"])).toMatch(/egressProxy.url carries credentials/);
    expect(fails(["egressProxy.url=http://proxy.example:3128", "egressProxy.existingSecret=egress-proxy"])).toMatch(/set url or existingSecret, not both/);
    expect(fails(["receiverTls.secretName=t", "receiverTls.clientCertificate=false", "receiverTls.ca=false"])).toMatch(/set clientCertificate/);
    expect(fails(["receiverTls.secretName=t", "receiverTls.mountPath=/etc/callback-sidecar/tls"])).toMatch(/overlaps \/etc\/callback-sidecar/);
    expect(fails(["receiverTls.secretName=t", "receiverTls.mountPath=/tmp"])).toMatch(/overlaps \/tmp/);
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
