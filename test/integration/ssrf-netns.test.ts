/*
 * Runs test/netns/*.netns.ts (the network guard against public addresses, with real sockets) in a
 * new network namespace: `unshare -rn` (an unprivileged user namespace; root needs only -n, but -r
 * works for both). There is no interface but a downed loopback there, so an address the guard lets
 * through fails in the kernel and no packet leaves the machine, even if the guard were broken.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/cli.js";

const vitestBin = join(ROOT, "node_modules/vitest/vitest.mjs");
const linux = process.platform === "linux";

describe.skipIf(!linux)("network guard in a network namespace without routes", () => {
  it("unshare -rn is available (needed to test public addresses without sending packets)", () => {
    const probe = spawnSync("unshare", ["-rn", "true"], { encoding: "utf8" });
    expect(
      probe.status,
      `unshare -rn failed: ${probe.error?.message ?? probe.stderr}; enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as root`,
    ).toBe(0);
  });

  it("refuses metadata and special-purpose addresses and dials public ones", () => {
    const run = spawnSync(
      "unshare",
      ["-rn", process.execPath, vitestBin, "run", "--config", "test/netns/vitest.config.ts", "--reporter", "verbose"],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: { PATH: process.env.PATH, HOME: process.env.HOME, CALLBACK_SIDECAR_NETNS: "1", NO_COLOR: "1" },
        timeout: 120_000,
      },
    );
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(output).toMatch(/Tests\s+15 passed/);
  }, 150_000);
});
