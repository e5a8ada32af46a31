import { describe, expect, it } from "vitest";
import { CallbackExecution, type CallbackStatus } from "../../src/domain/models.js";
import { ExecutionStore } from "../../src/repository/execution-store.js";

function execution(id: string, extra: { tenant?: string; config?: string; status?: CallbackStatus } = {}): CallbackExecution {
  return CallbackExecution.parse({
    id,
    config_id: extra.config ?? "cfg-1",
    event_type: "order.created",
    target_url: "https://hooks.example.com/in",
    payload: { id },
    status: extra.status ?? "PENDING",
    tenant_id: extra.tenant ?? "acme",
    delivery_id: `d-${id}`,
  });
}

const ids = (list: CallbackExecution[]) => list.map((e) => e.id);

describe("ExecutionStore", () => {
  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses capacity %s", (capacity) => {
    expect(() => new ExecutionStore(capacity)).toThrow(RangeError);
  });

  it("keeps nothing with capacity 0 (no reader for it)", () => {
    const store = new ExecutionStore(0);
    store.save(execution("e1"));
    expect(store.size).toBe(0);
  });

  it("saves and gets executions by id", () => {
    const store = new ExecutionStore(10);
    const e = execution("a");
    store.save(e);
    expect(store.get("a")).toBe(e);
    expect(store.get("b")).toBeUndefined();
    expect(store.size).toBe(1);
  });

  it("evicts the oldest first beyond capacity", () => {
    const store = new ExecutionStore(3);
    for (const id of ["a", "b", "c"]) store.save(execution(id));
    expect(store.size).toBe(3);
    store.save(execution("d"));
    expect(store.size).toBe(3);
    expect(store.get("a")).toBeUndefined();
    expect(ids(store.find())).toEqual(["d", "c", "b"]);
    store.save(execution("e"));
    expect(store.get("b")).toBeUndefined();
    expect(ids(store.find())).toEqual(["e", "d", "c"]);
  });

  it("keeps one execution with capacity 1", () => {
    const store = new ExecutionStore(1);
    store.save(execution("a"));
    store.save(execution("b"));
    expect(ids(store.find())).toEqual(["b"]);
  });

  it("an update replaces the execution in place: same position, no eviction", () => {
    const store = new ExecutionStore(3);
    for (const id of ["a", "b", "c"]) store.save(execution(id));
    const delivered = { ...execution("a"), status: "DELIVERED" as const, attempts: 1 };
    store.save(delivered);
    expect(store.size).toBe(3);
    expect(store.get("a")).toBe(delivered);
    // Still the oldest: find lists it last, and the next new one evicts it.
    expect(ids(store.find())).toEqual(["c", "b", "a"]);
    store.save(execution("d"));
    expect(store.get("a")).toBeUndefined();
    expect(ids(store.find())).toEqual(["d", "c", "b"]);
  });

  it("an update at capacity does not evict anything", () => {
    const store = new ExecutionStore(2);
    store.save(execution("a"));
    store.save(execution("b"));
    store.save(execution("b", { status: "FAILED" }));
    store.save(execution("a", { status: "DELIVERED" }));
    expect(ids(store.find())).toEqual(["b", "a"]);
    expect(store.get("a")?.status).toBe("DELIVERED");
    expect(store.get("b")?.status).toBe("FAILED");
  });

  describe("find", () => {
    const store = new ExecutionStore(100);
    store.save(execution("1", { tenant: "acme", config: "c1", status: "DELIVERED" }));
    store.save(execution("2", { tenant: "globex", config: "c2", status: "FAILED" }));
    store.save(execution("3", { tenant: "acme", config: "c1", status: "FAILED" }));
    store.save(execution("4", { tenant: "acme", config: "c3", status: "PENDING" }));
    store.save(execution("5", { tenant: "globex", config: "c2", status: "DELIVERED" }));
    store.save(execution("6", { tenant: "acme", config: "c1", status: "FAILED" }));

    it("lists everything newest first", () => {
      expect(ids(store.find())).toEqual(["6", "5", "4", "3", "2", "1"]);
      expect(ids(store.find({}))).toEqual(["6", "5", "4", "3", "2", "1"]);
    });

    it("filters by tenant", () => {
      expect(ids(store.find({ tenantId: "acme" }))).toEqual(["6", "4", "3", "1"]);
      expect(ids(store.find({ tenantId: "nobody" }))).toEqual([]);
    });

    it("filters by config", () => {
      expect(ids(store.find({ configId: "c2" }))).toEqual(["5", "2"]);
    });

    it("filters by status", () => {
      expect(ids(store.find({ status: "FAILED" }))).toEqual(["6", "3", "2"]);
      expect(ids(store.find({ status: "PENDING" }))).toEqual(["4"]);
    });

    it("combines filters", () => {
      expect(ids(store.find({ tenantId: "acme", status: "FAILED" }))).toEqual(["6", "3"]);
      expect(ids(store.find({ tenantId: "acme", configId: "c1", status: "DELIVERED" }))).toEqual(["1"]);
      expect(ids(store.find({ tenantId: "globex", configId: "c1" }))).toEqual([]);
    });

    it("limits to the newest matches", () => {
      expect(ids(store.find({ limit: 2 }))).toEqual(["6", "5"]);
      expect(ids(store.find({ tenantId: "acme", limit: 3 }))).toEqual(["6", "4", "3"]);
      expect(ids(store.find({ status: "FAILED", limit: 1 }))).toEqual(["6"]);
      expect(ids(store.find({ limit: 100 }))).toHaveLength(6);
      expect(store.find({ limit: 0 })).toEqual([]);
    });
  });
});
