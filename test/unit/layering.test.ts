/**
 * The folder order is enforced by `npm run lint` (eslint.config.js): an import pointing up the
 * order, or across peers, is an error naming both folders; the code as it stands has none.
 */
import { resolve } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const eslint = new ESLint({ cwd: ROOT });
const restricted = async (filePath: string, code: string) =>
  (await eslint.lintText(code, { filePath: resolve(ROOT, filePath) }))
    .flatMap((r) => r.messages)
    .filter((m) => m.ruleId === "no-restricted-imports")
    .map((m) => m.message);

describe("layering", () => {
  it.each([
    ["src/domain/x.ts", 'import "../app/sidecar.js";', "src/domain must not import src/app"],
    ["src/delivery/ssrf/x.ts", 'import "../../pipeline/record-trace.js";', "src/delivery must not import src/pipeline"],
    ["src/config/x.ts", 'import "../kafka/client.js";', "src/config must not import src/kafka"],
    ["src/kafka/x.ts", 'import "../observability/metrics.js";', "src/kafka must not import src/observability"],
    ["src/shared/x.ts", 'import "../domain/models.js";', "src/shared must not import src/domain"],
  ])("an upward or sideways import in %s fails the lint", async (file, code, message) => {
    expect((await restricted(file, code)).join("\n")).toContain(message);
  });

  it("imports down the order pass", async () => {
    expect(
      await restricted("src/kafka/x.ts", 'import "../config/settings.js";\nimport "../delivery/target.js";\nimport "../shared/errors.js";'),
    ).toEqual([]);
  });

  it("the source has no import against the order", async () => {
    const results = await eslint.lintFiles(["src/**/*.ts"]);
    expect(
      results.flatMap((r) => r.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => `${r.filePath}: ${m.message}`)),
    ).toEqual([]);
  });
});
