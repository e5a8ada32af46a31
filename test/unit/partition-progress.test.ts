import { describe, expect, it } from "vitest";
import { PartitionProgress } from "../../src/kafka/partition-progress.js";

describe("PartitionProgress", () => {
  it("has nothing to commit before anything starts", () => {
    const p = new PartitionProgress();
    expect(p.committable()).toBeUndefined();
    expect(p.pending).toBe(0);
  });

  it("commits the lowest offset not yet done (the first one while it runs)", () => {
    const p = new PartitionProgress();
    p.begin("10");
    expect(p.committable()).toBe("10");
    p.begin("11");
    p.begin("12");
    expect(p.committable()).toBe("10");
    expect(p.pending).toBe(3);
  });

  it("moves past a prefix of done records, to the next one to read", () => {
    const p = new PartitionProgress();
    for (const o of ["10", "11", "12"]) p.begin(o);
    p.complete("10");
    expect(p.committable()).toBe("11");
    p.complete("11");
    expect(p.committable()).toBe("12");
    p.complete("12");
    expect(p.committable()).toBe("13");
    expect(p.pending).toBe(0);
  });

  it("does not move past a record still running when later ones finish first", () => {
    const p = new PartitionProgress();
    for (const o of ["10", "11", "12", "13"]) p.begin(o);
    p.complete("12");
    p.complete("13");
    expect(p.committable()).toBe("10");
    p.complete("11");
    expect(p.committable()).toBe("10");
    expect(p.pending).toBe(4);
    p.complete("10");
    expect(p.committable()).toBe("14");
    expect(p.pending).toBe(0);
  });

  it("stops at the first gap in completions", () => {
    const p = new PartitionProgress();
    for (const o of ["1", "2", "3", "4", "5"]) p.begin(o);
    p.complete("1");
    p.complete("2");
    p.complete("4");
    expect(p.committable()).toBe("3");
    expect(p.pending).toBe(3);
    p.complete("3");
    expect(p.committable()).toBe("5");
    expect(p.pending).toBe(1);
  });

  it("handles offsets with gaps (compacted topics, transaction markers)", () => {
    const p = new PartitionProgress();
    p.begin("100");
    p.begin("105");
    p.complete("105");
    expect(p.committable()).toBe("100");
    p.complete("100");
    expect(p.committable()).toBe("106");
  });

  it("after a gap, commits the next record still running, not the offset after the last done one", () => {
    const p = new PartitionProgress();
    p.begin("100");
    p.begin("105");
    p.complete("100");
    expect(p.committable()).toBe("105");
  });

  it("keeps new work after everything before it completed", () => {
    const p = new PartitionProgress();
    p.begin("1");
    p.complete("1");
    expect(p.committable()).toBe("2");
    p.begin("2");
    expect(p.committable()).toBe("2");
    p.begin("3");
    p.complete("3");
    expect(p.committable()).toBe("2");
    p.complete("2");
    expect(p.committable()).toBe("4");
  });

  it("counts offsets beyond 2^53 exactly", () => {
    const p = new PartitionProgress();
    // 2^53 + 1 and + 2: a Number would round these.
    p.begin("9007199254740993");
    p.begin("9007199254740994");
    p.complete("9007199254740994");
    expect(p.committable()).toBe("9007199254740993");
    p.complete("9007199254740993");
    expect(p.committable()).toBe("9007199254740995");
  });

  it("handles the largest int64 offsets", () => {
    const p = new PartitionProgress();
    p.begin("9223372036854775806");
    p.complete("9223372036854775806");
    expect(p.committable()).toBe("9223372036854775807");
  });
});
