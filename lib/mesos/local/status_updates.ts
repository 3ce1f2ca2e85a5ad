/**
 * The agent's task status update manager: one ordered stream of reliable
 * updates per task, of which only the oldest unacknowledged one is in
 * flight; it is resent with a doubling backoff until the scheduler
 * acknowledges it, and at once when the framework re-subscribes.
 *
 * Each stream keeps the time its update in flight is due for a resend; one
 * timer, armed for the earliest of those times, resends what is due. An
 * update that is acknowledged in time (nearly all) costs no timer of its
 * own, which a create's hundred updates per agent would otherwise each set
 * and clear.
 *
 * @module
 */

import { hex, isTerminal, type TaskStatus } from "./messages.ts";

/** Options of {@link StatusUpdateManager}. */
export interface StatusUpdateManagerOptions {
  /** First retry interval (Mesos: 10 s). */
  initialIntervalMs: number;
  /** Largest retry interval (Mesos: 10 min). */
  maxIntervalMs: number;
  /** Sends one update towards the scheduler (through the master). */
  forward(frameworkId: string, status: TaskStatus): void;
}

interface UpdateStream {
  pending: TaskStatus[];
  seen: Set<string>;
  terminal: boolean;
  intervalMs: number;
  /** When the update in flight is resent (ms since the epoch); undefined: nothing due. */
  dueAt?: number;
}

/** What {@link StatusUpdateManager.add} did with an update. */
export type AddResult = "added" | "duplicate" | "after-terminal";

/** Per-task reliable delivery of status updates (see the module doc). */
export class StatusUpdateManager {
  #streams = new Map<string, Map<string, UpdateStream>>();
  #options: StatusUpdateManagerOptions;
  #timer?: ReturnType<typeof setTimeout>;
  /** When {@link #timer} fires. */
  #timerAt?: number;

  /** Creates a manager. */
  constructor(options: StatusUpdateManagerOptions) {
    this.#options = options;
  }

  #stream(frameworkId: string, taskId: string, create: boolean): UpdateStream | undefined {
    let tasks = this.#streams.get(frameworkId);
    if (!tasks) {
      if (!create) return undefined;
      tasks = new Map();
      this.#streams.set(frameworkId, tasks);
    }
    let stream = tasks.get(taskId);
    if (!stream && create) {
      stream = {
        pending: [],
        seen: new Set(),
        terminal: false,
        intervalMs: this.#options.initialIntervalMs,
      };
      tasks.set(taskId, stream);
    }
    return stream;
  }

  /** Queues a reliable update (it must carry a uuid); sends it now when nothing is in flight. */
  add(frameworkId: string, status: TaskStatus): AddResult {
    if (!status.uuid) throw new TypeError("Cannot queue a status update without a uuid");
    const stream = this.#stream(frameworkId, status.task_id.value, true)!;
    const key = hex(status.uuid);
    if (stream.seen.has(key)) return "duplicate";
    if (stream.terminal) return "after-terminal";
    stream.seen.add(key);
    stream.pending.push(status);
    if (isTerminal(status.state)) stream.terminal = true;
    if (stream.pending.length === 1) this.#send(frameworkId, stream);
    return "added";
  }

  #send(frameworkId: string, stream: UpdateStream): void {
    const head = stream.pending[0];
    if (!head) {
      stream.dueAt = undefined;
      return;
    }
    stream.dueAt = Date.now() + stream.intervalMs;
    this.#arm(stream.dueAt);
    this.#options.forward(frameworkId, head);
  }

  /** Makes the timer fire by `at` at the latest. */
  #arm(at: number): void {
    if (this.#timerAt !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()));
  }

  /** Resends every update that is due (doubling its interval) and arms the timer for the next. */
  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const [frameworkId, tasks] of this.#streams) {
      for (const stream of tasks.values()) {
        if (stream.dueAt === undefined) continue;
        if (stream.dueAt <= now) {
          stream.intervalMs = Math.min(stream.intervalMs * 2, this.#options.maxIntervalMs);
          this.#send(frameworkId, stream);
        } else {
          next = Math.min(next, stream.dueAt);
        }
      }
    }
    if (next !== Infinity) this.#arm(next);
  }

  /**
   * Handles a scheduler ACK. Returns the acknowledged update (and whether
   * the task's stream is now finished) or `undefined` when the uuid is not
   * the one in flight.
   */
  acknowledge(
    frameworkId: string,
    taskId: string,
    uuid: Uint8Array,
  ): { status: TaskStatus; finished: boolean } | undefined {
    const stream = this.#stream(frameworkId, taskId, false);
    const head = stream?.pending[0];
    if (!stream || !head?.uuid || hex(head.uuid) !== hex(uuid)) return undefined;
    stream.dueAt = undefined;
    stream.pending.shift();
    stream.intervalMs = this.#options.initialIntervalMs;
    const finished = stream.pending.length === 0 && isTerminal(head.state);
    if (finished) this.#streams.get(frameworkId)?.delete(taskId);
    else this.#send(frameworkId, stream);
    return { status: head, finished };
  }

  /** The latest state queued for a task (in flight or not), if it has a stream. */
  latestState(frameworkId: string, taskId: string): string | undefined {
    const pending = this.#stream(frameworkId, taskId, false)?.pending;
    return pending?.[pending.length - 1]?.state;
  }

  /** Number of unacknowledged updates of the framework (all tasks). */
  pendingCount(frameworkId: string): number {
    let n = 0;
    for (const s of this.#streams.get(frameworkId)?.values() ?? []) n += s.pending.length;
    return n;
  }

  /** Resends every in-flight update of the framework at once (re-subscription). */
  resend(frameworkId: string): void {
    for (const stream of this.#streams.get(frameworkId)?.values() ?? []) {
      stream.intervalMs = this.#options.initialIntervalMs;
      this.#send(frameworkId, stream);
    }
  }

  /**
   * Stops every retry timer but keeps the pending updates (the agent
   * process stopped; with checkpointing they survive on disk). Nothing is
   * sent until {@link resendAll}.
   */
  pause(): void {
    for (const tasks of this.#streams.values()) {
      for (const stream of tasks.values()) stream.dueAt = undefined;
    }
    this.#stopTimer();
  }

  /** Resends every in-flight update of every framework at once (agent recovered). */
  resendAll(): void {
    for (const id of this.#streams.keys()) this.resend(id);
  }

  /** Forgets a framework's streams (framework removed). */
  dropFramework(frameworkId: string): void {
    this.#streams.delete(frameworkId);
    // The timer, if armed, finds nothing of it due; stop it when nothing is left at all.
    if (this.#streams.size === 0) this.#stopTimer();
  }

  /** Stops the retry timer and forgets everything (agent stopped). */
  clear(): void {
    this.#streams.clear();
    this.#stopTimer();
  }

  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = undefined;
  }
}
