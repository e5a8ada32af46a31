import type { CallbackExecution } from "../domain/models.js";
import type { PlannedDelivery } from "../domain/routing.js";
import type { PreparedEvent } from "../delivery/prepared-event.js";
import { nextDelayMs } from "../delivery/retry-policy.js";
import { targetOf } from "../delivery/target.js";
import { MAX_HANDOFF_VALUE_BYTES } from "../kafka/handoff-records.js";
import type { RecordEnd, RecordSignals } from "../kafka/record-processor.js";
import { abortableSleep } from "../shared/abortable-sleep.js";
import type { HandoffWriter, Origin } from "./handoff-writer.js";
import type { PipelineDeps } from "./pipeline-deps.js";
import type { RecordTrace } from "../observability/tracing.js";
import { attemptHooks } from "./record-trace.js";

/**
 * `event`: a delivery planned from a fresh event. `retry`: a delivery taken from the retry topic
 * (or a tier), whose record is already durable, so a short wait parks the record itself.
 */
export type StageMode = "event" | "retry";

/** One delivery's run through the stage: what it needs at every step besides its execution. */
export interface DeliveryRun {
  event: PreparedEvent;
  planned: PlannedDelivery;
  origin: Origin;
  signals: RecordSignals;
  mode: StageMode;
  /** The record's span, when tracing is on. */
  trace?: RecordTrace | undefined;
}

/** Why a delivery waits; each cause is decided here and nowhere else. */
export type WaitCause = "backoff" | "breaker" | "host" | "rate_limit";

/** A wait until `at`. `reserved`: a rate-limit slot at `at` is this delivery's own. */
export interface Wait {
  cause: WaitCause;
  at: number;
  reserved: boolean;
}

/** Where a wait happens: not at all, asleep in process, parked in the scheduler, or in Kafka. */
export type Placement = "now" | "sleep" | "park" | "topic";

/**
 * The one rule for where a delivery waits. In memory (without an in-flight slot or a host slot,
 * either way) only up to `inMemoryLimitMs`; longer waits go to Kafka (the retry topic or a delay
 * tier), so memory never grows with how long or how many deliveries wait. A body too large for a
 * Kafka record has no such choice: it waits in process.
 */
export function placeWait(delayMs: number, mode: StageMode, durable: boolean, stopping: boolean, inMemoryLimitMs: number): Placement {
  if (delayMs <= 0) return "now";
  if (!durable) return "sleep";
  if (stopping || delayMs > inMemoryLimitMs) return "topic";
  return mode === "event" ? "sleep" : "park";
}

const DONE: RecordEnd = { kind: "done" };
const ABANDONED: RecordEnd = { kind: "abandoned" };
// opossum's half-open timer fires at its time or just after: look again a little later.
const BREAKER_TIMER_SLACK_MS = 50;
const same = <T>(wait: Promise<T>): Promise<T> => wait;

/**
 * One delivery from its next attempt to an end, and the one owner of its waiting:
 *
 *   host's breaker open ─────────────► wait until its probe (no attempt spent)
 *   over its rate limit ─────────────► wait for its slot (no attempt spent)
 *   host stalled (share full, idle) ─► wait one retry step (no attempt spent)
 *   one attempt (dispatcher) ─► delivered ──► done
 *                            ├ failed ─────► dead letter ─► done
 *                            └ retry(at) ──► wait until the schedule, backoff or Retry-After allows
 *   wait (placeWait): now ─► next step; sleep ─► in process, no slot held ─► next step;
 *                     park ─► the record waits in the scheduler (later); topic ─► retry topic or tier ─► done
 *   anything thrown ─────────────────► dead letter "internal_error" ─► done
 *
 * The dispatcher makes single attempts and says when the next may be; the scheduler parks what it
 * is told to; the writer writes where the wait's length says. Nothing else decides a wait.
 */
export class DeliveryStage {
  constructor(
    private readonly deps: PipelineDeps,
    private readonly writer: HandoffWriter,
  ) {}

  async run(run: DeliveryRun, execution: CallbackExecution, reserved = false): Promise<RecordEnd> {
    try {
      return await this.advance(run, execution, reserved);
    } catch (error) {
      if (run.signals.deadline.aborted) return ABANDONED;
      this.deps.logger.error(
        { delivery_id: run.planned.deliveryId, source: run.event.source, err: (error as Error)?.message },
        "delivery broke unexpectedly; dead-lettering it",
      );
      this.deps.dispatcher.fail(run.event, execution, "internal_error", "internal error");
      run.trace?.deadLettered("internal_error");
      return this.writer.failedDelivery(run.event, run.planned, execution, "internal_error", run.origin, run.signals);
    }
  }

  /**
   * Makes a waiting delivery durable: the retry topic or the tier its wait fits, attempts as they
   * stand, and its rate-limit slot if it holds one (the record is due at that slot).
   */
  handOver(run: DeliveryRun, execution: CallbackExecution, wait: Pick<Wait, "at" | "reserved">): Promise<RecordEnd> {
    this.deps.executions.save(execution);
    run.trace?.event("retry_scheduled", { "delivery.id": run.planned.deliveryId, due_at: new Date(wait.at).toISOString() });
    return this.writer.retry(run.event, run.planned, execution, wait.at, run.origin, run.signals, wait.reserved);
  }

  private async advance(run: DeliveryRun, execution: CallbackExecution, reserved: boolean): Promise<RecordEnd> {
    for (;;) {
      const step = await this.step(run, execution, reserved);
      if (step.kind !== "wait") return step;
      const waited = await this.wait(run, execution, step.wait);
      if (waited !== "again") return waited;
      reserved = step.wait.reserved;
    }
  }

  /** How long a wait may stay in memory; longer ones wait in Kafka (one too large for a record cannot). */
  private inMemoryLimitMs(run: DeliveryRun): number {
    if (!isDurable(run)) return Number.POSITIVE_INFINITY;
    return run.mode === "event" ? this.deps.inProcessBudgetMs : this.deps.tiers.inMemoryLimitMs;
  }

  /** One attempt, or what it must wait for first. */
  private async step(run: DeliveryRun, execution: CallbackExecution, reserved: boolean): Promise<RecordEnd | { kind: "wait"; wait: Wait }> {
    const { event, planned, signals } = run;
    const { deps } = this;
    const host = targetOf(planned.subscription.target_url).host;
    const now = deps.now();
    const waitFor = (cause: WaitCause, at: number, keep = false) => ({ kind: "wait" as const, wait: { cause, at, reserved: keep } });

    // The breaker would refuse at once: spend no attempt, no token and no slot on it.
    const reopensAt = deps.breakers.reopensAt(host);
    if (reopensAt !== undefined) {
      run.trace?.event("circuit_open", { "server.address": host, until: new Date(reopensAt).toISOString() });
      return waitFor("breaker", Math.max(reopensAt, now + BREAKER_TIMER_SLACK_MS));
    }

    // A slot of its rate limits (reserved: it waited for one already); see delivery/rate-limiter.ts.
    const limits = [planned.subscription.rate_limit, planned.config.rate_limit];
    const limited = limits[0] !== null || limits[1] !== null;
    if (limited && !reserved) {
      const slot = deps.rateLimiter.take(limits, now);
      if (slot > now) {
        deps.metrics?.rateLimited.inc({ tenant: this.writer.tenantLabel(event.tenantId) });
        return waitFor("rate_limit", slot, true);
      }
    }

    // The host has its whole share in flight: wait while it keeps finishing work, lending the
    // record's slot; one that finished nothing for the budget (slow or dead) is not queued behind.
    const slots = deps.hostSlots;
    let granted = slots.tryAcquire(host);
    if (!granted) {
      const queued = slots.wait(host, isDurable(run) ? deps.inProcessBudgetMs : Number.POSITIVE_INFINITY, signals.stopping);
      granted = queued !== false && (await (signals.lend ?? same)(queued));
    }
    if (!granted) {
      if (!isDurable(run) && signals.stopping.aborted) return ABANDONED;
      return waitFor("host", deps.now() + nextDelayMs(planned.config, Math.max(1, execution.attempts), { jitter: deps.jitter }));
    }
    // Late for its slot (the host was busy), it must not bunch up with the next: metered as sent.
    if (limited) {
      const ready = deps.rateLimiter.admit(limits, deps.now());
      if (ready > deps.now()) {
        slots.release(host);
        return waitFor("rate_limit", ready, true);
      }
    }
    let verdict;
    deps.metrics?.inflight.inc();
    try {
      verdict = await deps.dispatcher.attempt(event, planned, execution, run.trace && attemptHooks(run.trace, run.planned));
    } finally {
      deps.metrics?.inflight.dec();
      slots.release(host);
    }
    switch (verdict.kind) {
      case "delivered":
        return DONE;
      case "failed":
        run.trace?.deadLettered(verdict.failure);
        return this.writer.failedDelivery(event, planned, verdict.execution, verdict.failure, run.origin, signals);
      case "retry":
        return waitFor("backoff", verdict.notBefore);
    }
  }

  /** Carries out a wait where placeWait puts it; "again" when the delivery may take its next step. */
  private async wait(run: DeliveryRun, execution: CallbackExecution, wait: Wait): Promise<RecordEnd | "again"> {
    const { deps } = this;
    const { signals } = run;
    const limited = wait.cause === "rate_limit" ? deps.metrics?.rateLimitWaiting : undefined;
    switch (placeWait(wait.at - deps.now(), run.mode, isDurable(run), signals.stopping.aborted, this.inMemoryLimitMs(run))) {
      case "now":
        return "again";
      case "sleep": {
        limited?.inc();
        const slept = await (signals.lend ?? same)(abortableSleep(Math.max(0, wait.at - deps.now()), signals.stopping)).then(
          () => true,
          () => false,
        );
        limited?.dec();
        if (slept) return "again";
        return isDurable(run) ? this.handOver(run, execution, wait) : ABANDONED;
      }
      case "park":
        limited?.inc();
        return {
          kind: "later",
          at: wait.at,
          resume: (resumed) => (limited?.dec(), this.run({ ...run, signals: resumed }, execution, wait.reserved)),
          handOver: (resumed) => (limited?.dec(), this.handOver({ ...run, signals: resumed }, execution, wait)),
        };
      case "topic":
        return this.handOver(run, execution, wait);
    }
  }
}

function isDurable(run: DeliveryRun): boolean {
  const body = run.event.body;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most bodies need no count.
  return body.length * 3 <= MAX_HANDOFF_VALUE_BYTES || Buffer.byteLength(body) <= MAX_HANDOFF_VALUE_BYTES;
}
