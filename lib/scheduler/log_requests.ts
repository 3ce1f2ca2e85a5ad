/**
 * The scheduler's side of `GET /v1/LOGS/{name}/{processId}`: a `logs`
 * command goes to the executor of the process (a Mesos MESSAGE, so it works
 * the same on real Mesos), and its `result` message, which carries the
 * lines, comes back through the event stream. {@linkcode LogRequests} pairs
 * each answer with its waiting request and bounds the wait.
 *
 * @module
 */

/** How long a LOGS request waits for the executor's answer, ms. */
export const LOGS_TIMEOUT_MS = 5_000;

/** What the executor answered. */
export interface LogAnswer {
  lines: string[];
  truncated: boolean;
}

/** Raised when the executor answered with an error, or not at all. */
export class LogRequestError extends Error {
  /** `timeout` (no answer in time) or `refused` (the executor answered with an error). */
  readonly kind: "timeout" | "refused";
  /** Creates the error. */
  constructor(message: string, kind: "timeout" | "refused") {
    super(message);
    this.name = "LogRequestError";
    this.kind = kind;
  }
}

interface Waiter {
  resolve(answer: LogAnswer): void;
  reject(error: LogRequestError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Pending LOGS commands by command id; see the module doc. */
export class LogRequests {
  readonly #pending = new Map<string, Waiter>();

  /**
   * Waits for the answer to command `commandId`, at most `timeoutMs`;
   * rejects with {@linkcode LogRequestError} (`timeout` names `what`).
   */
  wait(commandId: string, what: string, timeoutMs: number = LOGS_TIMEOUT_MS): Promise<LogAnswer> {
    return new Promise<LogAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(commandId);
        reject(
          new LogRequestError(
            `${what} did not answer within ${timeoutMs / 1000} s`,
            "timeout",
          ),
        );
      }, timeoutMs);
      this.#pending.set(commandId, { resolve, reject, timer });
    });
  }

  /**
   * Settles the request an executor `result` answers; `false` when it
   * answers none of them (a result of another command).
   */
  answer(
    msg: { commandId: string; ok: boolean; error?: string; lines?: unknown; truncated?: unknown },
  ): boolean {
    const waiter = this.#pending.get(msg.commandId);
    if (!waiter) return false;
    this.#pending.delete(msg.commandId);
    clearTimeout(waiter.timer);
    if (!msg.ok) {
      waiter.reject(
        new LogRequestError(msg.error ?? "The executor refused the request", "refused"),
      );
    } else if (!Array.isArray(msg.lines) || msg.lines.some((l) => typeof l !== "string")) {
      waiter.reject(new LogRequestError("The executor's answer holds no lines", "refused"));
    } else {
      waiter.resolve({ lines: msg.lines as string[], truncated: msg.truncated === true });
    }
    return true;
  }

  /** Rejects every pending request (the scheduler stops). */
  cancelAll(why: string): void {
    for (const [id, w] of this.#pending) {
      clearTimeout(w.timer);
      w.reject(new LogRequestError(why, "timeout"));
      this.#pending.delete(id);
    }
  }
}
