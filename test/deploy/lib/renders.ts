/** Every set of objects a user can install from this repository, rendered once per test file. */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHART, helm, kustomize, parseObjects, REPO, render, type K8sObject } from "./render.js";

export const CHART_VALUE_SETS = [
  "(defaults)",
  "ci/all-on-values.yaml",
  "ci/autoscaling-values.yaml",
  "ci/chart-secret-values.yaml",
  "ci/egress-values.yaml",
  "ci/tracing-values.yaml",
];

/**
 * The example app chart that embeds the sidecar through the named templates; `set`: --set pairs,
 * `args`: more helm template arguments (e.g. --kube-version). Throws with helm's message on failure.
 */
export function renderHostExample(set: string[] = [], args: string[] = []): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), "orders-api-chart-"));
  try {
    cpSync(join(REPO, "helm/examples/orders-api"), dir, { recursive: true });
    const chartYaml = join(dir, "Chart.yaml");
    writeFileSync(chartYaml, readFileSync(chartYaml, "utf8").replace("file://../../callback-sidecar", `file://${CHART}`));
    const dep = helm(["dependency", "build", dir]);
    if (!dep.ok) throw new Error(`helm dependency build failed:\n${dep.stderr}`);
    const out = helm(["template", "shop", dir, "--namespace", "shop", ...set.flatMap((s) => ["--set", s]), ...args]);
    if (!out.ok) throw new Error(`helm template (orders-api example) failed:\n${out.stderr}`);
    return parseObjects(out.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const KUSTOMIZE_DIRS = [
  "deploy/kustomize/base",
  "deploy/kustomize/examples/standalone",
  "deploy/kustomize/examples/existing-app",
  "deploy/kustomize/examples/tracing",
];

export function allRenders(): Map<string, K8sObject[]> {
  const renders = new Map<string, K8sObject[]>();
  for (const values of CHART_VALUE_SETS) {
    renders.set(`helm ${values}`, render({ values: values.startsWith("(") ? [] : [values] }));
  }
  renders.set("helm examples/orders-api", renderHostExample());
  for (const dir of KUSTOMIZE_DIRS) renders.set(`kustomize ${dir}`, kustomize(dir));
  return renders;
}
