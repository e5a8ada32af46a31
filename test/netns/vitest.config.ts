import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Only for test/integration/ssrf-netns.test.ts, which runs it under `unshare -rn`: a network namespace
// with nothing but a downed loopback. No Kafka, no global setup; the files are *.netns.ts so the main
// suite never picks them up outside the namespace.
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/netns/**/*.netns.ts"],
    testTimeout: 20_000,
    pool: "forks",
  },
});
