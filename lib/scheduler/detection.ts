/**
 * Failure detection of RUNNING processes, as pure functions: when a silence
 * is only a question, when it becomes a verdict, and what the verdict may
 * do. No I/O; the driver (`core.ts` with `liveness_checks.ts`) feeds it what
 * it saw and performs the answer.
 *
 * A process is in doubt when any of these holds:
 *
 * - **stats silence**: its executor sent no stats for `statsSilenceMs` (an
 *   agent restarting or re-registering drops executor messages);
 * - **Mesos doubt**: Mesos' last word on its task is `TASK_UNREACHABLE`,
 *   `TASK_UNKNOWN` or `TASK_LOST` (the agent, not necessarily the process, is
 *   out of touch);
 * - **unanswered**: its executor reports that its checks get no answer while
 *   the process lives (not stopped, not exited).
 *
 * A doubt is never a verdict. The scheduler then checks the process itself
 * (`PING` + `ROLE`, bounded: {@linkcode probeDue}, {@linkcode recordProbe}),
 * and {@linkcode judgeLiveness} decides:
 *
 * | doubt                   | own check                        | verdict                                                      |
 * | ----------------------- | -------------------------------- | ------------------------------------------------------------ |
 * | none                    | —                                | alive                                                        |
 * | any                     | answers, or not yet confirmed    | suspect: keep checking (a process that answers stays)        |
 * | Mesos doubt             | confirmed failing                | lost (Mesos and our check agree)                             |
 * | stats silence           | confirmed failing                | lost after `lostAfterMs` of silence (stream flowing) — kept when it holds the only copy |
 * | unanswered              | confirmed failing                | lost after `lostAfterMs` unanswered — kept when it holds the only copy |
 *
 * "Confirmed failing" is `probeFailures` checks in a row over at least
 * `probeSpanMs`; a check whose own timer fired late (the scheduler was
 * starved) does not count. Time-outs alone (silence, unanswered checks) never
 * take the last copy of an instance's data ({@linkcode hasOtherCopy}).
 *
 * @module
 */

import type { ProcessRecord } from "../model.ts";
import { classifyFailure } from "../redis/liveness.ts";
import type { ProbeResult } from "../redis/probe.ts";

/** Thresholds of detection, in ms (and a count). */
export interface DetectionOptions {
  /** No stats for this long puts a process in doubt. */
  statsSilenceMs: number;
  /** Time-outs alone (silence, unanswered checks) must last this long before a verdict. */
  lostAfterMs: number;
  /** Time between two direct checks of a process in doubt. */
  probeIntervalMs: number;
  /** Failed direct checks in a row that confirm a doubt. */
  probeFailures: number;
  /** Least time from the first to the confirming failed check. */
  probeSpanMs: number;
  /** A failed check noticed this much after its deadline does not count. */
  probeLagAllowanceMs: number;
}

/** The defaults used by `sched`. */
export const DEFAULT_DETECTION: Readonly<DetectionOptions> = {
  statsSilenceMs: 3_000,
  lostAfterMs: 10_000,
  probeIntervalMs: 1_000,
  probeFailures: 3,
  probeSpanMs: 2_000,
  probeLagAllowanceMs: 500,
};

/** The direct checks of one process so far. */
export interface ProbeHistory {
  /** Counted failures in a row (reset by an answer). */
  failures: number;
  /** When the first of those failures was seen. */
  firstFailureAt?: number;
  /** When the process last answered. */
  lastAnswerAt?: number;
  /** When the last check started. */
  lastStartedAt?: number;
  /** A check is under way. */
  inFlight: boolean;
  /** What the last failed check said. */
  lastError?: string;
}

/** An empty history. */
export function newProbeHistory(): ProbeHistory {
  return { failures: 0, inFlight: false };
}

/** Mesos task states that say the agent, not the task, is out of touch. */
export const MESOS_DOUBT_STATES: ReadonlySet<string> = new Set([
  "TASK_UNREACHABLE",
  "TASK_UNKNOWN",
  "TASK_LOST",
]);

/** Everything {@linkcode judgeLiveness} looks at for one RUNNING process. */
export interface LivenessInput {
  /** Milliseconds since the epoch. */
  now: number;
  /** When its last stats (or TASK_RUNNING, or the subscription) arrived. */
  statsAt: number;
  /** Some Mesos event arrived after `statsAt` (silence on a stalled stream proves nothing). */
  streamFlowing: boolean;
  /** Mesos' last state of its task. */
  mesosState?: string;
  /** The executor's checks have had no answer since this time (its stats say so). */
  unansweredSince?: number;
  /** With `unansweredSince`: the process state the executor read. */
  procState?: string;
  /** The scheduler's own checks. */
  probe?: ProbeHistory;
  /** The process has an address to check. */
  probeable: boolean;
  /** Another process of the instance holds a copy of the data ({@linkcode hasOtherCopy}). */
  otherCopy: boolean;
}

/** What {@linkcode judgeLiveness} decides. */
export type Liveness =
  /** No doubt. */
  | { verdict: "alive" }
  /** In doubt, not confirmed (or it answers): check it, keep it. */
  | { verdict: "suspect"; doubt: string; askMesos: boolean }
  /** Confirmed: treat the task as lost with `state` (fenced and killed before anything replaces it). */
  | { verdict: "lost"; reason: string; state: string }
  /** Would be lost on time-outs, but it holds the only copy of the data: kept, said once. */
  | { verdict: "kept"; reason: string };

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}

/** Decides about one RUNNING process; see the module doc for the table. */
export function judgeLiveness(
  input: LivenessInput,
  options: DetectionOptions = DEFAULT_DETECTION,
): Liveness {
  const { now } = input;
  const silentMs = now - input.statsAt;
  const mesosDoubt = input.mesosState !== undefined && MESOS_DOUBT_STATES.has(input.mesosState);
  const silent = silentMs >= options.statsSilenceMs;
  const unansweredMs = input.unansweredSince === undefined
    ? undefined
    : now - input.unansweredSince;
  if (!mesosDoubt && !silent && unansweredMs === undefined) return { verdict: "alive" };

  const doubts: string[] = [];
  if (mesosDoubt) doubts.push(`Mesos reports ${input.mesosState}`);
  if (silent) doubts.push(`no stats from its executor for ${seconds(silentMs)} s`);
  if (unansweredMs !== undefined) {
    doubts.push(
      `its executor's checks unanswered for ${seconds(unansweredMs)} s${
        input.procState ? ` (process ${input.procState})` : ""
      }`,
    );
  }
  const doubt = doubts.join("; ");
  const suspect: Liveness = { verdict: "suspect", doubt, askMesos: silent };
  const p = input.probe;
  const confirmed = !input.probeable ||
    (p !== undefined && p.failures >= options.probeFailures &&
      p.firstFailureAt !== undefined && now - p.firstFailureAt >= options.probeSpanMs);
  if (!confirmed) return suspect;

  const ours = input.probeable
    ? `and it does not answer the scheduler (${p!.failures} checks${
      p!.lastError ? `, last: ${p!.lastError}` : ""
    })`
    : "and it has no address to check";
  const capital = doubt.charAt(0).toUpperCase() + doubt.slice(1);
  if (mesosDoubt) {
    return { verdict: "lost", reason: `${capital} ${ours}`, state: input.mesosState! };
  }
  const longSilence = silent && silentMs >= options.lostAfterMs && input.streamFlowing;
  const longUnanswered = unansweredMs !== undefined && unansweredMs >= options.lostAfterMs;
  if (!longSilence && !longUnanswered) return suspect;
  if (!input.otherCopy) {
    return {
      verdict: "kept",
      reason: `${capital} ${ours}; not replaced: it holds the only copy of the data`,
    };
  }
  return { verdict: "lost", reason: `${capital} ${ours}`, state: "TASK_UNKNOWN" };
}

/** Whether a direct check of a process in doubt should start now. */
export function probeDue(
  history: ProbeHistory | undefined,
  now: number,
  options: DetectionOptions = DEFAULT_DETECTION,
): boolean {
  if (!history) return true;
  if (history.inFlight) return false;
  return history.lastStartedAt === undefined ||
    now - history.lastStartedAt >= options.probeIntervalMs;
}

/**
 * The history after one direct check ended at `now` with `result`, checked
 * with deadline `timeoutMs` while the scheduler's own event loop stalled
 * `stalledMs`. An answer resets the failures; a time-out across a stall of
 * more than `probeLagAllowanceMs` (the answer may have sat unread) is not
 * counted.
 */
export function recordProbe(
  history: ProbeHistory,
  result: ProbeResult,
  check: { timeoutMs: number; stalledMs?: number },
  now: number,
  options: DetectionOptions = DEFAULT_DETECTION,
): ProbeHistory {
  const { firstFailureAt: _f, lastError: _e, ...rest } = history;
  if (result.ok) return { ...rest, inFlight: false, failures: 0, lastAnswerAt: now };
  const kind = result.timedOut
    ? classifyFailure({
      elapsedMs: result.latencyMs,
      timeoutMs: check.timeoutMs,
      lagAllowanceMs: options.probeLagAllowanceMs,
      ...(check.stalledMs !== undefined ? { stalledMs: check.stalledMs } : {}),
    })
    : "failure";
  if (kind === "inconclusive") return { ...history, inFlight: false };
  return {
    ...history,
    inFlight: false,
    failures: history.failures + 1,
    firstFailureAt: history.failures === 0 ? now : history.firstFailureAt ?? now,
    lastError: result.error,
  };
}

/** What {@linkcode hasOtherCopy} needs of a process's latest stats. */
export interface CopyStats {
  role: "master" | "slave";
  inSync: boolean;
}

/**
 * Whether some process of the instance other than `self` holds a copy of the
 * data a client could go on with: the master, or a slave in sync with it,
 * RUNNING and not itself in doubt (`doubted` task ids). Two processes in
 * doubt never vouch for each other.
 */
export function hasOtherCopy(
  self: ProcessRecord,
  procs: readonly ProcessRecord[],
  masterId: string | undefined,
  stats: ReadonlyMap<string, CopyStats>,
  doubted: ReadonlySet<string>,
): boolean {
  return procs.some((q) => {
    if (q.id === self.id || q.state !== "RUNNING" || !q.taskId || doubted.has(q.taskId)) {
      return false;
    }
    if (q.id === masterId) return true;
    const s = stats.get(q.taskId);
    return s !== undefined && s.role === "slave" && s.inSync;
  });
}
