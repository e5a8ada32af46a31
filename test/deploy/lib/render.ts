/**
 * Renders what users install: the chart (helm template) and the kustomize trees (kustomize build),
 * with the pinned tools scripts/check-deploy.sh installs. Without them (a plain `npm test` on a
 * machine that never ran the deploy checks) the suites skip, unless DEPLOY_CHECKS=1 demands them.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const REPO = fileURLToPath(new URL("../../..", import.meta.url));
export const CHART = join(REPO, "helm/callback-sidecar");
const TOOLS = process.env.CALLBACK_SIDECAR_TOOLS ?? join(homedir(), ".cache/callback-sidecar-tools");
export const HELM = process.env.HELM ?? join(TOOLS, "bin/helm");
export const KUSTOMIZE = process.env.KUSTOMIZE ?? join(TOOLS, "bin/kustomize");

export const toolsMissing = !existsSync(HELM) || !existsSync(KUSTOMIZE);
if (toolsMissing && process.env.DEPLOY_CHECKS === "1") {
  throw new Error(`DEPLOY_CHECKS=1 but ${HELM} or ${KUSTOMIZE} is missing: run scripts/check-deploy.sh`);
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join("\n"));
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

function run(cmd: string, args: string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: REPO });
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

/** helm template with values files (paths relative to the chart), --set and --set-json pairs. */
export function helmTemplate(options: { values?: string[]; set?: string[]; setJson?: string[]; chart?: string; release?: string } = {}) {
  const args = ["template", options.release ?? "cbs-test", options.chart ?? CHART, "--namespace", "shop"];
  for (const v of options.values ?? []) args.push("-f", join(CHART, v));
  for (const s of options.set ?? []) args.push("--set", s);
  for (const s of options.setJson ?? []) args.push("--set-json", s);
  return run(HELM, args);
}

export function render(options: Parameters<typeof helmTemplate>[0] = {}): K8sObject[] {
  const r = helmTemplate(options);
  if (!r.ok) throw new Error(`helm template failed:\n${r.stderr}`);
  return parseObjects(r.stdout);
}

export function kustomize(dir: string): K8sObject[] {
  const r = run(KUSTOMIZE, ["build", join(REPO, dir)]);
  if (!r.ok) throw new Error(`kustomize build ${dir} failed:\n${r.stderr}`);
  return parseObjects(r.stdout);
}

export function helm(args: string[]) {
  return run(HELM, args);
}

export function find<T = K8sObject>(objects: K8sObject[], kind: string): T {
  const found = objects.find((o) => o.kind === kind);
  if (!found) throw new Error(`no ${kind} among ${objects.map((o) => o.kind).join(", ")}`);
  return found as unknown as T;
}
