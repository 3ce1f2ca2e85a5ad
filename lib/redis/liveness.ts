/**
 * The rules an executor uses to tell a slow redis-server from a dead one,
 * free of I/O so they can be tested as tables:
 *
 * - {@linkcode adaptiveTimeoutMs}: a check's deadline follows the answer
 *   times seen lately, so a machine that is busy (every answer slower) does
 *   not turn into a row of failed checks.
 * - {@linkcode classifyFailure}: a check that timed out while the checker
 *   itself was starved (its timer fired late) proves nothing about redis.
 * - {@linkcode judgeUnanswered}: after enough failed checks, only a process
 *   the kernel shows as stopped (`SIGSTOP`, a tracer) is hung for sure and
 *   may be killed at once; one that runs or sleeps is only *unresponsive*,
 *   which is reported for a second opinion instead of acted on.
 * - {@linkcode parseProcStat}: the state letter of `/proc/<pid>/stat`.
 *
 * @module
 */

/** Bounds of {@linkcode adaptiveTimeoutMs}. */
export interface AdaptiveTimeoutOptions {
  /** The smallest deadline, in ms (an idle machine's). */
  floorMs: number;
  /** The largest deadline, in ms. */
  ceilingMs: number;
  /** Deadline = this × the slowest recent answer. */
  factor: number;
}

/**
 * The deadline of the next check: `factor` × the slowest answer in
 * `recentMs`, kept within `[floorMs, ceilingMs]`. With no answer seen yet it
 * is the floor.
 */
export function adaptiveTimeoutMs(
  recentMs: readonly number[],
  options: AdaptiveTimeoutOptions,
): number {
  const slowest = recentMs.reduce((m, v) => (Number.isFinite(v) && v > m ? v : m), 0);
  const wanted = Math.ceil(slowest * options.factor);
  return Math.min(options.ceilingMs, Math.max(options.floorMs, wanted));
}

/**
 * Keeps the last `size` values (answer times) in order, oldest first; for
 * {@linkcode adaptiveTimeoutMs}.
 */
export class LatencyWindow {
  readonly #size: number;
  readonly #values: number[] = [];

  /** Makes an empty window of `size` values. */
  constructor(size = 16) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Cannot make a latency window of size ${size}`);
    }
    this.#size = size;
  }

  /** Adds one value, dropping the oldest beyond the size. */
  add(ms: number): void {
    this.#values.push(ms);
    if (this.#values.length > this.#size) this.#values.shift();
  }

  /** The values, oldest first. */
  get values(): readonly number[] {
    return this.#values;
  }
}

/** What a failed check proves. */
export type FailureKind =
  /** The server did not answer (or refused, or broke the connection). */
  | "failure"
  /** The checker's own timer fired too late to tell: the miss may be the checker's. */
  | "inconclusive";

/**
 * Classifies a failed check. A check during which the checker's own event
 * loop stalled more than `lagAllowanceMs` (`stalledMs`, or a time-out whose
 * timer fired that late) is inconclusive: the answer may have been sitting
 * unread. Errors that came before the deadline (refused, reset) are real
 * failures.
 */
export function classifyFailure(
  input: { elapsedMs: number; timeoutMs: number; lagAllowanceMs: number; stalledMs?: number },
): FailureKind {
  if (input.elapsedMs < input.timeoutMs) return "failure";
  const stalled = Math.max(input.stalledMs ?? 0, input.elapsedMs - input.timeoutMs);
  return stalled > input.lagAllowanceMs ? "inconclusive" : "failure";
}

/** A process state as the kernel shows it in `/proc/<pid>/stat`. */
export type ProcState =
  /** `R`: running or runnable (possibly waiting for a CPU). */
  | "running"
  /** `S` or `I`: sleeping, waiting for an event. */
  | "sleeping"
  /** `D`: in an uninterruptible wait (usually disk). */
  | "disk"
  /** `T` or `t`: stopped by a signal or a tracer: it cannot answer until resumed. */
  | "stopped"
  /** `Z` or `X`: exited, not yet reaped. */
  | "zombie"
  /** No such process. */
  | "gone"
  /** No `/proc` or a state not listed here. */
  | "unknown";

/** Reads the state letter out of the text of `/proc/<pid>/stat`. */
export function parseProcStat(text: string): ProcState {
  // "pid (comm) S ...": comm may hold spaces and parentheses: take the last ")".
  const close = text.lastIndexOf(")");
  const letter = close >= 0 ? text.slice(close + 2, close + 3) : "";
  switch (letter) {
    case "R":
      return "running";
    case "S":
    case "I":
      return "sleeping";
    case "D":
      return "disk";
    case "T":
    case "t":
      return "stopped";
    case "Z":
    case "X":
      return "zombie";
    default:
      return "unknown";
  }
}

/** What the failed checks in a row mean so far. */
export type UnansweredVerdict =
  /** Fewer than `maxFailures` in a row: keep checking, nothing to say. */
  | "wait"
  /** Stopped (`SIGSTOP`): it cannot answer, ever, until resumed; kill it. */
  | "hung"
  /** Alive as far as the kernel knows but silent: report it, do not kill. */
  | "unresponsive";

/**
 * The verdict after `failures` checks in a row got no answer. A time-out is
 * never enough on its own to kill a process: only the kernel's word that it
 * is stopped is. Everything else that lives (running, sleeping, in a disk
 * wait, or a state that cannot be read) is unresponsive, which the scheduler
 * confirms with a check of its own before it replaces anything.
 */
export function judgeUnanswered(
  input: { failures: number; maxFailures: number; state: ProcState },
): UnansweredVerdict {
  if (input.failures < input.maxFailures) return "wait";
  return input.state === "stopped" ? "hung" : "unresponsive";
}
