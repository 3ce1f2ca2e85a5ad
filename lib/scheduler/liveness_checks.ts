/**
 * The scheduler's own checks of processes in doubt: what it remembers per
 * task (its direct checks, what the executor last said about answers) and
 * the checks themselves, run off the core's queue. The rules live in
 * `detection.ts`; this keeps the bookkeeping out of `core.ts`.
 *
 * @module
 */

import { adaptiveTimeoutMs, LatencyWindow } from "../redis/liveness.ts";
import { probeRedis, type ProbeResult, type ProbeTarget } from "../redis/probe.ts";
import { stallMeter } from "../redis/stall_meter.ts";
import type { RedisStats } from "../executor_messages.ts";
import {
  DEFAULT_DETECTION,
  type DetectionOptions,
  newProbeHistory,
  probeDue,
  type ProbeHistory,
  recordProbe,
} from "./detection.ts";

/** A direct check (the real one is {@linkcode probeRedis}; tests may pass their own). */
export type Prober = (target: ProbeTarget) => Promise<ProbeResult>;

/**
 * Smallest deadline of a direct check, ms; it grows with the answer times seen
 * (× 4) and doubles with each failure in a row, up to 5 s.
 */
export const PROBE_TIMEOUT_FLOOR_MS = 1_000;
const PROBE_TIMEOUT_CEILING_MS = 5_000;

/** Per-task detection memory and the direct checks in flight. */
export class LivenessChecks {
  readonly options: DetectionOptions;
  readonly #prober: Prober;
  readonly #now: () => number;
  readonly #histories = new Map<string, ProbeHistory>();
  /** Task id → since when (scheduler clock) and in what state its executor gets no answer. */
  readonly #unanswered = new Map<string, { since: number; state?: string }>();
  /** Task id → the last verdict said about it (to log each change once). */
  readonly #said = new Map<string, string>();
  readonly #latencies = new LatencyWindow(32);
  readonly #running = new Set<Promise<void>>();

  /** Makes the bookkeeping; `prober` defaults to {@linkcode probeRedis}. */
  constructor(
    options: Partial<DetectionOptions> = {},
    prober: Prober = probeRedis,
    now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULT_DETECTION, ...options };
    this.#prober = prober;
    this.#now = now;
  }

  /** Notes what one stats entry says about answers (called for each fresh stats entry). */
  noteStats(s: RedisStats, now: number): void {
    if (typeof s.unansweredMs === "number" && s.unansweredMs >= 0) {
      const since = now - s.unansweredMs;
      const old = this.#unanswered.get(s.taskId);
      this.#unanswered.set(s.taskId, {
        since: old ? Math.min(old.since, since) : since,
        ...(typeof s.procState === "string" ? { state: s.procState } : {}),
      });
    } else {
      this.#unanswered.delete(s.taskId);
    }
  }

  /** What the executor last said: no answer since when, in what process state. */
  unanswered(taskId: string): { since: number; state?: string } | undefined {
    return this.#unanswered.get(taskId);
  }

  /** The direct checks of a task so far. */
  history(taskId: string): ProbeHistory | undefined {
    return this.#histories.get(taskId);
  }

  /**
   * Remembers `verdict` for the task. Returns the verdict before it when
   * they differ (`""` when there was none), `undefined` when unchanged: the
   * driver logs changes once, not every pass.
   */
  note(taskId: string, verdict: string): string | undefined {
    const before = this.#said.get(taskId) ?? "";
    if (before === verdict) return undefined;
    this.#said.set(taskId, verdict);
    return before;
  }

  /** The task is out of doubt: its direct-check history goes. */
  clear(taskId: string): void {
    this.#histories.delete(taskId);
  }

  /** Drops everything about a task that ended. */
  forget(taskId: string): void {
    this.#histories.delete(taskId);
    this.#said.delete(taskId);
    this.#unanswered.delete(taskId);
  }

  /** Deadline of the next direct check, adapted to the answer times seen. */
  get timeoutMs(): number {
    return adaptiveTimeoutMs(this.#latencies.values, {
      floorMs: PROBE_TIMEOUT_FLOOR_MS,
      ceilingMs: PROBE_TIMEOUT_CEILING_MS,
      factor: 4,
    });
  }

  /**
   * Starts a direct check of `taskId` at `target` when one is due. When it
   * ends, `deliver` gets a function that records the result: the driver
   * calls it from its own queue (the one writer of the state), then runs its
   * reconcile pass. Returns whether a check started.
   */
  probeIfDue(
    taskId: string,
    target: Omit<ProbeTarget, "timeoutMs">,
    deliver: (record: () => void) => void,
  ): boolean {
    const now = this.#now();
    const history = this.#histories.get(taskId) ?? newProbeHistory();
    if (!probeDue(history, now, this.options)) return false;
    // Each failure in a row doubles the next deadline (to the ceiling): a
    // process that is only slow gets the time to prove it.
    const timeoutMs = Math.min(
      PROBE_TIMEOUT_CEILING_MS,
      Math.max(this.timeoutMs, PROBE_TIMEOUT_FLOOR_MS * 2 ** history.failures),
    );
    this.#histories.set(taskId, { ...history, inFlight: true, lastStartedAt: now });
    const startedAt = Date.now();
    const release = stallMeter.acquire();
    const run = this.#prober({ ...target, timeoutMs }).catch((error): ProbeResult => ({
      ok: false,
      error: error instanceof Error ? error.message : String(error),
      latencyMs: 0,
      timedOut: false,
    })).then((result) => {
      const endedAt = this.#now();
      const stalledMs = stallMeter.stalledSince(startedAt);
      release();
      deliver(() => {
        if (result.ok) this.#latencies.add(result.latencyMs);
        const current = this.#histories.get(taskId);
        // Cleared meanwhile (out of doubt, the task ended) or a newer check: nothing to record.
        if (!current?.inFlight || current.lastStartedAt !== now) return;
        this.#histories.set(
          taskId,
          recordProbe(current, result, { timeoutMs, stalledMs }, endedAt, this.options),
        );
      });
    });
    this.#running.add(run);
    run.finally(() => this.#running.delete(run));
    return true;
  }

  /** Resolves once every direct check started so far has ended. */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}
