import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The deploy checks need neither Kafka nor the main suite's global setup: scripts/check-deploy.sh
// runs only these, fast, with the tools it installed.
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/deploy/**/*.test.ts"],
    testTimeout: 120_000,
    pool: "forks",
  },
});
