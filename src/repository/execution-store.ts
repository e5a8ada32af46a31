import type { CallbackExecution, CallbackStatus } from "../domain/models.js";

export interface ExecutionQuery {
  tenantId?: string;
  configId?: string;
  status?: CallbackStatus;
  limit?: number;
}

/**
 * The last `capacity` executions in memory, oldest evicted first. It is an observability window,
 * not the durable record: Kafka (offsets, retry and dead-letter topics) is that.
 */
export class ExecutionStore {
  // Map iteration order is insertion order, which makes "oldest first" eviction O(1).
  private readonly executions = new Map<string, CallbackExecution>();

  /** Capacity 0 keeps nothing: the sidecar with /executions off has no reader for it. */
  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError("execution store capacity must be a non-negative integer");
  }

  save(execution: CallbackExecution): void {
    if (this.capacity === 0) return;
    if (!this.executions.has(execution.id)) {
      this.executions.set(execution.id, execution);
      if (this.executions.size > this.capacity) {
        const oldest = this.executions.keys().next().value as string;
        this.executions.delete(oldest);
      }
    } else {
      this.executions.set(execution.id, execution);
    }
  }

  get(id: string): CallbackExecution | undefined {
    return this.executions.get(id);
  }

  get size(): number {
    return this.executions.size;
  }

  /** Newest first. */
  find(query: ExecutionQuery = {}): CallbackExecution[] {
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const found: CallbackExecution[] = [];
    const all = [...this.executions.values()];
    for (let i = all.length - 1; i >= 0 && found.length < limit; i--) {
      const e = all[i] as CallbackExecution;
      if (query.tenantId !== undefined && e.tenant_id !== query.tenantId) continue;
      if (query.configId !== undefined && e.config_id !== query.configId) continue;
      if (query.status !== undefined && e.status !== query.status) continue;
      found.push(e);
    }
    return found;
  }
}
