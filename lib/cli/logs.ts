/**
 * `mrr logs`: the end of the redis-server log of one process of an instance
 * (`GET /v1/LOGS/{name}/{processId}`), read by its executor.
 *
 * @module
 */

import { SchedulerClient } from "./client.ts";
import { type Command, usageHint } from "./command.ts";
import { NAME_FLAG, noPositionals, requireName } from "./common_flags.ts";
import { type Context, println } from "./context.ts";
import { UsageError } from "./errors.ts";
import { booleanFlag, parseFlags, parseWholeNumber, stringFlag } from "./flags.ts";
import { resolveEndpoint, resolveToken } from "./user_config.ts";

const HINT = usageHint("logs");
/** The most lines the scheduler answers. */
const MAX_LINES = 1000;

/** The `logs` command. */
export const logsCommand: Command = {
  name: "logs",
  aliases: [],
  summary: "Print the end of a process's redis-server log",
  usage: "logs -n NAME -p ID [--lines N] [--json]",
  flags: [
    NAME_FLAG,
    {
      name: "process",
      short: "p",
      type: "string",
      placeholder: "ID",
      description: "the process id, as STATUS shows it (p1, p2, ...)",
    },
    {
      name: "lines",
      type: "string",
      placeholder: "N",
      description: `how many lines, 1 to ${MAX_LINES} (default 100)`,
    },
    { name: "json", type: "boolean", description: "print the scheduler's JSON" },
  ],
  notes: [
    "The executor on the process's agent reads the log in its data dir, so it",
    "works for a process that has ended too, while its agent keeps the dir.",
  ],
  examples: ["mrr logs -n cache1 -p p1", "mrr logs -n cache1 -p p2 --lines 500"],
  async run(args: string[], ctx: Context): Promise<number> {
    const parsed = parseFlags(args, this.flags, HINT);
    noPositionals(parsed, HINT);
    const name = requireName(parsed, HINT);
    const proc = stringFlag(parsed, "process");
    if (proc === undefined) {
      throw new UsageError('Option "-p" (the process id, e.g. p1) is required', HINT);
    }
    if (!/^p[1-9][0-9]*$/.test(proc.value)) {
      throw new UsageError(
        `Option "${proc.spelled}" must be a process id such as p1, but got "${proc.value}"`,
        HINT,
      );
    }
    const linesFlag = stringFlag(parsed, "lines");
    const lines = linesFlag
      ? parseWholeNumber(linesFlag, 1, `a whole number of lines from 1 to ${MAX_LINES}`, HINT)
      : 100;
    if (lines > MAX_LINES) {
      throw new UsageError(
        `Option "${
          linesFlag!.spelled
        }" must be a whole number of lines from 1 to ${MAX_LINES}, but got "${linesFlag!.value}"`,
        HINT,
      );
    }
    const client = new SchedulerClient(await resolveEndpoint(ctx.env), {
      token: await resolveToken(ctx.env),
    });
    const answer = await client.logs(name, proc.value, lines);
    if (booleanFlag(parsed, "json")) {
      println(ctx.stdout, JSON.stringify(answer, null, 2));
      return 0;
    }
    for (const line of answer.Lines) println(ctx.stdout, line);
    return 0;
  },
};
