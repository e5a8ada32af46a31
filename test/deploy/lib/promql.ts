/**
 * Metric names a PromQL expression reads, found with Prometheus' own grammar
 * (@prometheus-io/lezer-promql) rather than a regex, so label names, functions and keywords never
 * pass for metrics and a syntax error is an error.
 */
import { parser } from "@prometheus-io/lezer-promql";

/** Grafana's variables are not PromQL: give them values of the right kind first. */
export function fromGrafana(expr: string): string {
  return expr
    .replace(/\[\$\{?__\w+\}?\]/g, "[5m]")
    .replace(/\$\{?__\w+\}?/g, "300")
    .replace(/^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/s, "$1");
}

export function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names = new Set<string>();
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL syntax error at ${cursor.from} in: ${expr}`);
    if (cursor.name === "VectorSelector") {
      const node = cursor.node;
      const id = node.getChild("Identifier");
      if (id) names.add(expr.slice(id.from, id.to));
      for (const matcher of node.getChild("LabelMatchers")?.getChildren("UnquotedLabelMatcher") ?? []) {
        const label = matcher.getChild("LabelName");
        const value = matcher.getChild("StringLiteral");
        if (label && value && expr.slice(label.from, label.to) === "__name__") names.add(JSON.parse(expr.slice(value.from, value.to)) as string);
      }
    }
  } while (cursor.next());
  return [...names];
}
