#!/usr/bin/env node
// Reads `helm template` output on stdin and prints the PrometheusRule's spec (its rule groups) as
// a Prometheus rules file, for promtool. Fails when the render holds no PrometheusRule.
import { parseAllDocuments, stringify } from "yaml";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const rules = parseAllDocuments(input)
  .map((d) => d.toJS())
  .filter((o) => o?.kind === "PrometheusRule");
if (rules.length === 0) {
  console.error("no PrometheusRule in the input");
  process.exit(1);
}
process.stdout.write(stringify({ groups: rules.flatMap((r) => r.spec.groups) }, { lineWidth: 0 }));
