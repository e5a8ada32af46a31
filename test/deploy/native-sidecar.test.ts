import { beforeAll, describe, expect, it } from "vitest";
import { find, toolsMissing, type K8sObject } from "./lib/render.js";
import { allRenders, renderHostExample } from "./lib/renders.js";
import { describe as name, strictProblems } from "./lib/strict-validate.js";

/*
 * The sidecar in another chart's pods, both ways (helm/examples/orders-api, value nativeSidecar):
 * a second container (callback-sidecar.container), or a Kubernetes native sidecar, an init
 * container with restartPolicy Always (callback-sidecar.nativeSidecar, Kubernetes 1.29+). The
 * strict validator's Kubernetes schemas (kubernetes-models) are those of a release well past 1.29,
 * so they know the init container's restartPolicy; what the API server adds (restartPolicy only
 * on init containers, and only Always) is asserted here.
 */

type Probe = { httpGet: { path: string; port: string } };
type Container = { name: string; restartPolicy?: string; livenessProbe?: Probe; readinessProbe?: Probe; startupProbe?: Probe } & Record<string, unknown>;
type Workload = K8sObject & {
  spec: { template: { spec: { initContainers?: Container[]; containers: Container[]; terminationGracePeriodSeconds: number; volumes: unknown[] } } };
};

const podOf = (objects: K8sObject[]) => find<Workload>(objects, "Deployment").spec.template.spec;
const problemsOf = async (objects: K8sObject[]) => {
  const problems: string[] = [];
  for (const object of objects) for (const p of await strictProblems(object)) problems.push(`${name(object)}: ${p}`);
  return problems;
};

describe.skipIf(toolsMissing)("the sidecar in another chart's pods: a second container or a native sidecar", () => {
  let plain: K8sObject[];
  let native: K8sObject[];
  beforeAll(() => {
    plain = renderHostExample(["callback-sidecar.probes.readiness.enabled=true"]);
    native = renderHostExample(["nativeSidecar=true", "callback-sidecar.probes.readiness.enabled=true"]);
  });

  it("renders a second container by default, with no initContainers", async () => {
    const pod = podOf(plain);
    expect(pod.initContainers).toBeUndefined();
    expect(pod.containers.map((c) => c.name)).toEqual(["orders-api", "callback-sidecar"]);
    expect(pod.containers.every((c) => c.restartPolicy === undefined)).toBe(true);
    expect(await problemsOf(plain)).toEqual([]);
  });

  it("renders a native sidecar: an init container with restartPolicy Always, its probes kept, the app alone in containers", async () => {
    const pod = podOf(native);
    expect(pod.containers.map((c) => c.name)).toEqual(["orders-api"]);
    expect(pod.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([["callback-sidecar", "Always"]]);
    const sidecar = pod.initContainers![0]!;
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "cb-admin" });
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "cb-admin" });
    expect(await problemsOf(native)).toEqual([]);
  });

  it("is the same container either way, but for restartPolicy; same volumes and objects", () => {
    const { restartPolicy, ...nativeSidecar } = podOf(native).initContainers![0]!;
    expect(restartPolicy).toBe("Always");
    expect(nativeSidecar).toEqual(podOf(plain).containers.find((c) => c.name === "callback-sidecar"));
    expect(podOf(native).volumes).toEqual(podOf(plain).volumes);
    expect(native.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(plain.map((o) => `${o.kind}/${o.metadata.name}`));
  });

  it("gives the pod time for the app's shutdown and then the sidecar's, which a native sidecar waits for", () => {
    // The sidecar's 25 s shutdown-grace + 5 s slack; orders-api's 10 s (shutdownSeconds).
    expect(podOf(plain).terminationGracePeriodSeconds).toBe(30);
    expect(podOf(native).terminationGracePeriodSeconds).toBe(40);
  });

  it("refuses a cluster older than 1.29, where the pod would never get past its init containers", () => {
    expect(() => renderHostExample(["nativeSidecar=true"], ["--kube-version", "1.28.9"])).toThrow(/callback-sidecar.nativeSidecar needs Kubernetes 1.29 or later/);
    expect(podOf(renderHostExample(["nativeSidecar=true"], ["--kube-version", "1.29.0"])).initContainers).toHaveLength(1);
    // The plain container has no such floor.
    expect(podOf(renderHostExample([], ["--kube-version", "1.28.9"])).containers).toHaveLength(2);
  });

  it("never sets restartPolicy on an app container, in any render (the API server refuses it there)", () => {
    for (const [source, objects] of [...allRenders(), ["orders-api native", native] as const]) {
      for (const d of objects.filter((o): o is Workload => o.kind === "Deployment")) {
        const spec = d.spec.template.spec;
        for (const c of spec.containers) expect(c.restartPolicy, `${source} ${c.name}`).toBeUndefined();
        for (const c of spec.initContainers ?? []) expect([undefined, "Always"], `${source} ${c.name}`).toContain(c.restartPolicy);
      }
    }
  });
});
