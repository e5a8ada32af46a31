/**
 * Every series name the sidecar exports, from its own registry (src/observability/metrics.ts), so
 * the dashboard and alerts are checked against the code, not against a list that may drift.
 * prom-client exposes a histogram as _bucket/_sum/_count and a summary as quantiles/_sum/_count.
 */
import { createMetrics } from "../../../src/observability/metrics.js";

export async function exportedSeriesNames(): Promise<Set<string>> {
  const { registry } = createMetrics();
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    names.add(name);
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
    if (type === "summary") for (const suffix of ["_sum", "_count"]) names.add(name + suffix);
  }
  return names;
}
