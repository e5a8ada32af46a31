import { describe, expect, it } from "vitest";
import { RetryTiers, tierLabel } from "../../src/domain/retry-tiers.js";

const tiers = new RetryTiers("g.retry", [600_000, 10_000, 60_000, 10_000, 3_600_000]);

describe("RetryTiers", () => {
  it("names each tier after the retry topic and its delay, ascending, without duplicates", () => {
    expect(tiers.topics()).toEqual(["g.retry", "g.retry.10s", "g.retry.1m", "g.retry.10m", "g.retry.1h"]);
    expect([90_000, 1_500, 7_200_000].map(tierLabel)).toEqual(["90s", "1500ms", "2h"]);
  });

  it.each([
    [0, "g.retry"],
    [9_999, "g.retry"],
    [10_000, "g.retry.10s"],
    [59_999, "g.retry.10s"],
    [300_000, "g.retry.1m"],
    [6 * 3_600_000, "g.retry.1h"],
  ])("a wait of %i ms goes to %s", (wait, topic) => {
    expect(tiers.topicFor(wait)).toBe(topic);
  });

  it("keeps in memory only waits shorter than the first tier (all, without tiers)", () => {
    expect(tiers.inMemoryLimitMs).toBe(10_000);
    expect(new RetryTiers("g.retry", []).inMemoryLimitMs).toBe(Infinity);
    expect(new RetryTiers("g.retry", []).topicFor(3_600_000)).toBe("g.retry");
  });

  it("a tier's record is looked at one tier's delay after it was written, or when due if sooner; the retry topic's when due", () => {
    expect(tiers.startAt("g.retry.1m", 1_000, 1_000_000)).toBe(61_000);
    expect(tiers.startAt("g.retry.1m", 1_000, 30_000)).toBe(30_000);
    expect(tiers.startAt("g.retry", 1_000, 1_000_000)).toBe(1_000_000);
  });

  it("a wait of hours costs a bounded number of writes: each tier hop leaves less than it took", () => {
    let left = 6 * 3_600_000 + 123_456;
    let hops = 0;
    while (left >= tiers.inMemoryLimitMs) {
      left -= tiers.delayOf(tiers.topicFor(left)) as number;
      hops += 1;
    }
    expect(hops).toBeLessThanOrEqual(6 + 2 + 3 + 5);
  });
});
