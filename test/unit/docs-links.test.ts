/**
 * The docs hold together: every relative link in the README, CONTRIBUTING.md, docs/ and the chart's
 * README resolves to a file, and an anchor to a heading of that file; and no doc or test refers to
 * the project's internal issue numbers, which mean nothing to a reader.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const DOCS = [
  "README.md",
  "CONTRIBUTING.md",
  "helm/callback-sidecar/README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Markdown links outside code blocks and inline code. */
function linksOf(markdown: string): string[] {
  const text = markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

describe("documentation", () => {
  it.each(DOCS)("every relative link in %s resolves, anchors included", (doc) => {
    const markdown = readFileSync(join(ROOT, doc), "utf8");
    const broken: string[] = [];
    for (const link of linksOf(markdown)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;
      const [path, anchor] = link.split("#") as [string, string | undefined];
      const target = path === "" ? join(ROOT, doc) : resolve(dirname(join(ROOT, doc)), decodeURIComponent(path));
      if (!existsSync(target)) {
        broken.push(`${link} (no ${relative(ROOT, target)})`);
        continue;
      }
      if (anchor !== undefined && target.endsWith(".md") && !anchorsOf(readFileSync(target, "utf8")).has(anchor)) {
        broken.push(`${link} (no heading #${anchor} in ${relative(ROOT, target)})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("the README is a page a newcomer reads in two minutes", () => {
    expect(readFileSync(join(ROOT, "README.md"), "utf8").split("\n").length).toBeLessThan(220);
  });

  it("no doc or test cites an internal issue number", () => {
    const files = [
      ...DOCS,
      ...walk(join(ROOT, "test")).map((f) => relative(ROOT, f)),
      ...walk(join(ROOT, "scripts")).map((f) => relative(ROOT, f)),
    ];
    const citing = files.filter((f) =>
      /\bissues?\s*#?\d+\b|\(#\d+\)/i.test(readFileSync(join(ROOT, f), "utf8").replace(/Svix #\d+|Convoy #\d+/g, "")),
    );
    expect(citing).toEqual([]);
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : /\.(ts|mjs|md|sh|py|yaml)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}
