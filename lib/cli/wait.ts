/**
 * Waiting for an instance to come up or to go away, with progress: a bar
 * redrawn in place on a terminal, one plain line per change otherwise.
 *
 * @module
 */

import { type InstanceStatus, type SchedulerClient, UNREACHABLE_HINT } from "./client.ts";
import { type Output, println } from "./context.ts";
import { CommandError } from "./errors.ts";
import { formatDuration } from "./flags.ts";
import {
  countProcesses,
  fitWidth,
  type ProcessCount,
  progressBar,
  progressLine,
} from "./format.ts";

/** How often the scheduler is asked while waiting. */
export const POLL_INTERVAL_MS = 500;

/** After a create is accepted, how long a 404 is taken for the scheduler catching up. */
const GRACE_404_MS = 5_000;

/** Statuses after which an instance will not become RUNNING. */
const DEAD_STATUSES = new Set(["DELETING", "DELETED", "FAILED"]);

/** Options of {@linkcode waitForInstance}. */
export interface WaitOptions {
  /** The scheduler. */
  client: SchedulerClient;
  /** The instance name. */
  name: string;
  /**
   * `running`: until Status is RUNNING; `gone`: until STATUS answers 404;
   * `updated`: until no `Update` runs and Status is RUNNING.
   */
  until: "running" | "gone" | "updated";
  /** Give up after this many ms. */
  timeoutMs: number;
  /** Where progress goes. */
  out: Output;
  /** Slaves asked for, to count processes when the scheduler does not. */
  expectedSlaves?: number;
}

/**
 * Shows progress: on a terminal one line rewritten in place, cut to the
 * terminal's width so it never wraps; otherwise a plain line per change.
 * The instance's `Reason`, when it gives one, follows the counts.
 */
class Progress {
  #out: Output;
  #last = "";
  #drawn = false;

  constructor(out: Output) {
    this.#out = out;
  }

  show(status: string, count: ProcessCount | undefined, reason?: string, note?: string): void {
    // One line, and nothing the terminal would take for a control sequence.
    // deno-lint-ignore no-control-regex
    const why = reason?.replace(/[\s\u0000-\u001f\u007f]+/g, " ").trim() || undefined;
    if (this.#out.isTerminal) {
      const text = `${count ? progressBar(status, count) : status}${why ? `  ${why}` : ""}${
        note ? `  (${note})` : ""
      }`;
      this.#out.write(`\r\x1b[2K${fitWidth(text, this.#out.columns?.())}`);
      this.#drawn = true;
      return;
    }
    const line = `${count ? progressLine(status, count) : status}${why ? `; ${why}` : ""}${
      note ? ` (${note})` : ""
    }`;
    if (line !== this.#last) println(this.#out, line);
    this.#last = line;
  }

  end(): void {
    if (this.#drawn) this.#out.write("\n");
    this.#drawn = false;
  }
}

function reasonOf(instance: InstanceStatus | undefined): string | undefined {
  // An UPDATE in progress says its step (and why a new process waits, if it does).
  const update = instance?.Update as { Phase?: unknown; Waiting?: unknown } | null | undefined;
  if (update && typeof update.Phase === "string") {
    return `updating: ${update.Phase}${
      typeof update.Waiting === "string" ? `; ${update.Waiting}` : ""
    }`;
  }
  return typeof instance?.Reason === "string" ? instance.Reason : undefined;
}

function describe(instance: InstanceStatus | undefined, count: ProcessCount | undefined): string {
  if (!instance || !count) return "status unknown";
  const reason = typeof instance.Reason === "string" && instance.Reason.trim()
    ? `, reason: ${instance.Reason.trim()}`
    : "";
  return `status ${instance.Status}, ${count.running} of ${count.total} processes running${reason}`;
}

/**
 * Polls STATUS until the instance is RUNNING (returned) or gone (undefined
 * returned), showing progress; while waiting for RUNNING each poll is a long
 * poll the scheduler answers as soon as the instance is RUNNING. Throws {@linkcode CommandError} on timeout,
 * saying what is still pending, or when the instance cannot get there.
 */
export async function waitForInstance(options: WaitOptions): Promise<InstanceStatus | undefined> {
  const { client, name, until, timeoutMs, out, expectedSlaves } = options;
  const start = Date.now();
  const deadline = start + timeoutMs;
  const progress = new Progress(out);
  let last: InstanceStatus | undefined;
  let lastCount: ProcessCount | undefined;
  let lastError: CommandError | undefined;
  try {
    while (true) {
      let instance: InstanceStatus | undefined;
      let ok = false;
      const asked = Date.now();
      try {
        const left = Math.max(deadline - Date.now(), 1000);
        // Waiting for RUNNING: the scheduler holds the answer until it is (or
        // one poll interval passed), so RUNNING is seen at once.
        const hold = until === "gone"
          ? undefined
          : { status: "RUNNING", waitMs: Math.min(POLL_INTERVAL_MS, left) };
        instance = await client.withTimeout(Math.min(client.timeoutMs, left)).status(name, hold);
        ok = true;
        lastError = undefined;
      } catch (error) {
        if (!(error instanceof CommandError)) throw error;
        lastError = error;
        progress.show(
          last?.Status ?? "WAITING",
          lastCount,
          reasonOf(last),
          `${error.message}; retrying`,
        );
      }
      if (ok) {
        if (instance === undefined) {
          if (until === "gone") return undefined;
          if (Date.now() - start > GRACE_404_MS) {
            throw new CommandError(
              `instance "${name}" disappeared while waiting for it to run (404)`,
              { status: 404, hint: 'Run "mrr status" to list the instances' },
            );
          }
          progress.show("WAITING", undefined, undefined, "the scheduler does not list it yet");
        } else {
          last = instance;
          lastCount = countProcesses(instance, expectedSlaves);
          progress.show(instance.Status, lastCount, reasonOf(instance));
          if (until === "running" && instance.Status === "RUNNING") return instance;
          if (until === "updated" && instance.Status === "RUNNING" && !instance.Update) {
            return instance;
          }
          if (until !== "gone" && DEAD_STATUSES.has(instance.Status)) {
            throw new CommandError(
              `instance "${name}" will not run: ${describe(instance, lastCount)}`,
              { hint: `Run "mrr status -n ${name}" to see it` },
            );
          }
        }
      }
      const now = Date.now();
      if (now >= deadline) break;
      // What the long poll did not wait already (an error, or an answer given at once).
      const rest = Math.min(POLL_INTERVAL_MS - (now - asked), deadline - now);
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  } finally {
    progress.end();
  }
  const waited = formatDuration(timeoutMs);
  const pending = lastError && !last
    ? `last attempt failed: ${lastError.message}`
    : `${describe(last, lastCount)}${
      lastError ? `; last attempt failed: ${lastError.message}` : ""
    }`;
  if (until === "updated") {
    throw new CommandError(
      `the update of instance "${name}" is not over after ${waited}: ${pending}${
        reasonOf(last)?.startsWith("updating") ? `, ${reasonOf(last)}` : ""
      }`,
      {
        hint: lastError && !last
          ? UNREACHABLE_HINT
          : `It goes on: run "mrr status -n ${name}" to follow it`,
      },
    );
  }
  if (until === "running") {
    throw new CommandError(`instance "${name}" is not RUNNING after ${waited}: ${pending}`, {
      hint: lastError && !last
        ? UNREACHABLE_HINT
        : `It may still come up: run "mrr status -n ${name}" to follow it, or "mrr delete -n ${name}" to give up`,
    });
  }
  throw new CommandError(`instance "${name}" still exists after ${waited}: ${pending}`, {
    hint: lastError && !last ? UNREACHABLE_HINT : `Run "mrr status -n ${name}" to follow it`,
  });
}
