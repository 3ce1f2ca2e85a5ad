/**
 * The two kinds of failure `mrr` reports without a stack trace: a user's
 * mistake on the command line (exit 2) and a refusal or failure of the
 * scheduler (exit 1). Anything else is a bug and is shown with its stack.
 *
 * @module
 */

/** A mistake on the command line: a bad flag, value or command. Exit code 2. */
export class UsageError extends Error {
  /** A line telling the user what to do next, e.g. `Run "mrr help create" for usage`. */
  readonly hint: string | undefined;

  /** Creates the error; `message` names the flag and the bad value. */
  constructor(message: string, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
    this.hint = hint;
  }
}

/**
 * The scheduler refused a request, failed, could not be reached, or an
 * operation did not finish in time. Exit code 1.
 */
export class CommandError extends Error {
  /** A line telling the user what to do next, when there is one. */
  readonly hint: string | undefined;
  /** The HTTP status the scheduler answered with, when it answered. */
  readonly status: number | undefined;

  /** Creates the error. */
  constructor(
    message: string,
    { hint, status, cause }: { hint?: string; status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause });
    this.name = "CommandError";
    this.hint = hint;
    this.status = status;
  }
}
