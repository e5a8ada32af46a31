import { describe, expect, it } from "vitest";
import { OffsetTracker, PartitionProgress } from "../../src/kafka/offset-tracker.js";

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

describe("OffsetTracker", () => {
  it("reports nothing before any record starts", () => {
    const t = new OffsetTracker();
    expect(t.uncommitted()).toEqual([]);
    expect(t.pending).toBe(0);
  });

  it("reports each partition's committable offset in commitOffsets' shape", () => {
    const t = new OffsetTracker();
    const a0 = t.begin("a", 0, "5");
    const a1 = t.begin("a", 1, "7");
    const b0 = t.begin("b", 0, "1");
    a0.complete("5");
    a1.complete("7");
    b0.complete("1");
    expect(t.uncommitted()).toEqual([
      { topic: "a", partition: 0, offset: "6" },
      { topic: "a", partition: 1, offset: "8" },
      { topic: "b", partition: 0, offset: "2" },
    ]);
  });

  it("returns the same progress object for the same partition", () => {
    const t = new OffsetTracker();
    const p1 = t.begin("a", 0, "1");
    const p2 = t.begin("a", 0, "2");
    expect(p2).toBe(p1);
    expect(t.begin("a", 1, "1")).not.toBe(p1);
    expect(t.begin("b", 0, "1")).not.toBe(p1);
    expect(t.pending).toBe(4);
  });

  it("reports an offset only when it moved since the last markCommitted", () => {
    const t = new OffsetTracker();
    const p = t.begin("a", 0, "10");
    t.begin("a", 0, "11");
    p.complete("10");
    const first = t.uncommitted();
    expect(first).toEqual([{ topic: "a", partition: 0, offset: "11" }]);
    t.markCommitted(first);
    expect(t.uncommitted()).toEqual([]);
    // Out-of-order completion does not move the committable offset: still nothing new.
    t.begin("a", 0, "12");
    p.complete("12");
    expect(t.uncommitted()).toEqual([]);
    p.complete("11");
    expect(t.uncommitted()).toEqual([{ topic: "a", partition: 0, offset: "13" }]);
  });

  it("only marks the partitions that were committed", () => {
    const t = new OffsetTracker();
    const a = t.begin("a", 0, "1");
    const b = t.begin("b", 0, "1");
    a.complete("1");
    b.complete("1");
    t.markCommitted([{ topic: "a", partition: 0, offset: "2" }]);
    expect(t.uncommitted()).toEqual([{ topic: "b", partition: 0, offset: "2" }]);
  });

  it("reports again when marked with an older offset than the current one", () => {
    const t = new OffsetTracker();
    const a = t.begin("a", 0, "1");
    t.begin("a", 0, "2");
    a.complete("1");
    t.markCommitted(t.uncommitted());
    a.complete("2");
    expect(t.uncommitted()).toEqual([{ topic: "a", partition: 0, offset: "3" }]);
  });

  it("keeps partitions of different topics apart even with look-alike names", () => {
    const t = new OffsetTracker();
    t.begin("a1", 0, "5").complete("5");
    t.begin("a", 10, "7").complete("7");
    expect(t.uncommitted()).toEqual([
      { topic: "a1", partition: 0, offset: "6" },
      { topic: "a", partition: 10, offset: "8" },
    ]);
  });

  it("counts pending records across partitions", () => {
    const t = new OffsetTracker();
    const a = t.begin("a", 0, "1");
    t.begin("a", 0, "2");
    const b = t.begin("b", 3, "9");
    expect(t.pending).toBe(3);
    a.complete("2");
    expect(t.pending).toBe(3);
    a.complete("1");
    b.complete("9");
    expect(t.pending).toBe(0);
  });

  describe("newGeneration (rebalance)", () => {
    it("drops all progress and what was committed", () => {
      const t = new OffsetTracker();
      const p = t.begin("a", 0, "1");
      t.begin("a", 0, "2");
      p.complete("1");
      t.markCommitted(t.uncommitted());
      t.newGeneration();
      expect(t.uncommitted()).toEqual([]);
      expect(t.pending).toBe(0);
      // Re-reading from the committed offset reports it again (committed state was forgotten too).
      t.begin("a", 0, "2");
      expect(t.uncommitted()).toEqual([{ topic: "a", partition: 0, offset: "2" }]);
    });

    it("ignores completions through handles from before the rebalance", () => {
      const t = new OffsetTracker();
      const old = t.begin("a", 0, "1");
      old.complete("1");
      t.markCommitted(t.uncommitted());
      t.begin("a", 0, "2");
      t.newGeneration();
      const fresh = t.begin("a", 0, "2");
      expect(fresh).not.toBe(old);
      old.complete("2");
      expect(t.uncommitted()).toEqual([{ topic: "a", partition: 0, offset: "2" }]);
      expect(t.pending).toBe(1);
      fresh.complete("2");
      expect(t.uncommitted()).toEqual([{ topic: "a", partition: 0, offset: "3" }]);
      expect(t.pending).toBe(0);
    });

    it("leaves nothing to commit when only old handles complete", () => {
      const t = new OffsetTracker();
      const old = t.begin("a", 0, "5");
      t.newGeneration();
      old.complete("5");
      expect(t.uncommitted()).toEqual([]);
      expect(t.pending).toBe(0);
    });
  });

  it("reports big offsets (beyond 2^53) exactly", () => {
    const t = new OffsetTracker();
    const p = t.begin("a", 0, "18014398509481985");
    p.complete("18014398509481985");
    expect(t.uncommitted()).toEqual([{ topic: "a", partition: 0, offset: "18014398509481986" }]);
  });
});
