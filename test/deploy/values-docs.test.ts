import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isMap, isScalar, parseDocument, type Node } from "yaml";
import { CHART } from "./lib/render.js";

/*
 * values.yaml is the chart's manual: every key carries a comment (on it or on its parent section
 * for Kubernetes-native objects that are passed through verbatim).
 */
const VERBATIM = new Set(["podSecurityContext", "securityContext", "resources"]);

function undocumented(node: Node | null, path: string, out: string[]): void {
  if (!isMap(node) || VERBATIM.has(path)) return;
  node.items.forEach((pair, i) => {
    const key = isScalar(pair.key) ? String(pair.key.value) : "?";
    const keyPath = path ? `${path}.${key}` : key;
    const value = pair.value as Node | null;
    // Sections (non-empty maps) are containers: their leaves carry the documentation.
    if (isMap(value) && value.items.length > 0) return undocumented(value, keyPath, out);
    // The yaml parser hangs a comment above a map's first key on the map itself.
    const documented = Boolean((pair.key as Node).commentBefore) || Boolean(value?.comment) || (i === 0 && Boolean(node.commentBefore));
    if (!documented) out.push(keyPath);
  });
}

describe("values.yaml", () => {
  it("documents every key", () => {
    const doc = parseDocument(readFileSync(join(CHART, "values.yaml"), "utf8"));
    const out: string[] = [];
    undocumented(doc.contents as Node, "", out);
    expect(out).toEqual([]);
  });
});
