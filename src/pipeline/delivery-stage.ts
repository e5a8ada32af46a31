import type { CallbackExecution } from "../domain/models.js";
import type { PlannedDelivery } from "../domain/routing.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import { backoffDelayMs } from "../delivery/retry-policy.js";
import { targetOf } from "../delivery/target.js";
import { MAX_HANDOFF_VALUE_BYTES } from "../kafka/handoff-records.js";
import type { RecordSignals } from "../kafka/record-processor.js";
import { abortableSleep } from "../shared/abortable-sleep.js";
import type { HandoffWriter, Origin, WriteEnd } from "./handoff-writer.js";
import type { PipelineDeps } from "./pipeline-deps.js";

/**
 * How one delivery left the stage: `ended` (delivered, dead-lettered, handed to the retry topic, or
 * escaped), `abandoned` (the member let go first), or `later` (retry mode only: the next attempt is
 * due at `at` and waits in this process, its record already being in the retry topic).
 */
export type DeliveryEnd = { kind: "ended" } | { kind: "abandoned" } | { kind: "later"; at: number; execution: CallbackExecution };

/**
 * `event`: a delivery planned from a fresh event; a wait beyond the in-process budget is handed to
 * the retry topic. `retry`: a delivery taken from the retry topic; a wait stays in this process
 * (no write per round) unless the member is letting go.
 */
export type StageMode = "event" | "retry";

/** One delivery's run through the stage: what it needs at every step besides its execution. */
export interface DeliveryRun {
  event: PreparedEvent;
  planned: PlannedDelivery;
  origin: Origin;
  signals: RecordSignals;
  mode: StageMode;
}

const ENDED: DeliveryEnd = { kind: "ended" };
const BREAKER_TIMER_SLACK_MS = 50;
const same = <T>(wait: Promise<T>): Promise<T> => wait;
const ABANDONED: DeliveryEnd = { kind: "abandoned" };
const fromWrite = (end: WriteEnd): DeliveryEnd => (end === "abandoned" ? ABANDONED : ENDED);

/**
 * One delivery from its next attempt to an end:
 *
 *   host's breaker open ──────────────────────────► wait for its probe (no attempt spent)
 *   host stalled (share full, no progress) ───────► wait (no attempt spent)
 *   attempts (dispatcher) ─► delivered ───────────► ended
 *                          ├ failed(reason) ──────► dead letter ─► ended
 *                          └ deferred(dueAt) ─────► wait
 *   wait: event mode ─► retry topic ─► ended;  retry mode ─► later(at)
 *   anything thrown ──────────────────────────────► dead letter "internal_error" ─► ended
 */
export class DeliveryStage {
  constructor(
    private readonly deps: PipelineDeps,
    private readonly writer: HandoffWriter,
  ) {}

  async run(run: DeliveryRun, execution: CallbackExecution): Promise<DeliveryEnd> {
    try {
      return await this.attempt(run, execution);
    } catch (error) {
      if (run.signals.deadline.aborted) return ABANDONED;
      this.deps.logger.error(
        { delivery_id: run.planned.deliveryId, source: run.event.source, err: (error as Error)?.message },
        "delivery broke unexpectedly; dead-lettering it",
      );
      this.deps.dispatcher.fail(run.event, execution, "internal_error", "internal error");
      return fromWrite(await this.writer.failedDelivery(run.event, run.planned, execution, "internal_error", run.origin, run.signals));
    }
  }

  /** Makes a waiting delivery durable: the retry topic, due at `at`, attempts as they stand. */
  async handOver(run: DeliveryRun, execution: CallbackExecution, at: number): Promise<DeliveryEnd> {
    this.deps.executions.save(execution);
    return fromWrite(await this.writer.retry(run.event, run.planned, execution, at, run.origin, run.signals));
  }

  private async attempt(run: DeliveryRun, execution: CallbackExecution): Promise<DeliveryEnd> {
    const { event, planned, signals } = run;
    const host = targetOf(planned.subscription.target_url).host;
    // A body too large for a Kafka record cannot wait in the retry topic: it waits and retries in
    // process instead, and is left uncommitted (redelivered) if the member lets go meanwhile.
    const durable = Buffer.byteLength(event.body) <= MAX_HANDOFF_VALUE_BYTES;
    const wait = (at: number) => (durable ? this.wait(run, execution, at) : this.waitInProcess(run, execution, at));

    // The breaker would refuse at once: spend no attempt and no slot on it; come back for its probe.
    // Still open at or just past its time: opossum's timer has not fired yet; look again shortly.
    const reopensAt = this.deps.breakers.reopensAt(host);
    if (reopensAt !== undefined) return wait(Math.max(reopensAt, this.deps.now() + BREAKER_TIMER_SLACK_MS));

    // The host has its whole share in flight and finished nothing for the budget (slow or dead):
    // don't queue behind it; try later without spending an attempt. A busy host keeps finishing
    // work, so we wait for it, lending the record's slot meanwhile.
    const budgetMs = durable ? this.deps.inProcessBudgetMs : Number.POSITIVE_INFINITY;
    const slots = this.deps.hostSlots;
    let granted = slots.tryAcquire(host);
    if (!granted) {
      const queued = slots.wait(host, budgetMs, signals.stopping);
      granted = queued !== false && (await (signals.lend ?? same)(queued));
    }
    if (!granted) {
      if (!durable && signals.stopping.aborted) return ABANDONED;
      return wait(
        this.deps.now() + backoffDelayMs(planned.config.backoff_ms, Math.max(1, execution.attempts), { jitter: this.deps.jitter }),
      );
    }
    let result;
    this.deps.metrics?.inflight.inc();
    try {
      result = await this.deps.dispatcher.deliver(event, planned, { sleepBudgetMs: budgetMs, signal: signals.stopping }, execution);
    } finally {
      this.deps.metrics?.inflight.dec();
      slots.release(host);
    }
    switch (result.state) {
      case "delivered":
        return ENDED;
      case "failed":
        return fromWrite(await this.writer.failedDelivery(event, planned, result.execution, result.failure, run.origin, signals));
      case "deferred":
        return wait(result.dueAt);
    }
  }

  private async wait(run: DeliveryRun, execution: CallbackExecution, at: number): Promise<DeliveryEnd> {
    if (run.mode === "retry" && !run.signals.stopping.aborted) return { kind: "later", at, execution };
    return this.handOver(run, execution, at);
  }

  private async waitInProcess(run: DeliveryRun, execution: CallbackExecution, at: number): Promise<DeliveryEnd> {
    const slept = await abortableSleep(Math.max(0, at - this.deps.now()), run.signals.stopping).then(
      () => true,
      () => false,
    );
    return slept ? this.attempt(run, execution) : ABANDONED;
  }
}
