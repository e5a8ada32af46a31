import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The deployment checks run from scripts/check-deploy.sh (part of npm test), with the tools it installs.
    exclude: [...configDefaults.exclude, "test/deploy/**"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    globalSetup: ["test/support/kafka-global-setup.ts"],
  },
});
