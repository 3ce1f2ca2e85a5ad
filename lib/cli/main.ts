/**
 * The `mrr` program: dispatches to a command and turns errors into exit
 * codes — 0 done, 1 the scheduler refused or failed, 2 a usage mistake. A
 * user's mistake prints one line and a hint, never a stack trace.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import type { Command } from "./command.ts";
import { type Context, denoContext, println } from "./context.ts";
import { createCommand } from "./create.ts";
import { credentialsCommand } from "./credentials.ts";
import { deleteCommand } from "./delete.ts";
import { eventsCommand } from "./events.ts";
import { logsCommand } from "./logs.ts";
import { CommandError, UsageError } from "./errors.ts";
import { commandHelp, mainHelp } from "./help.ts";
import { initCommand } from "./init.ts";
import { proxyCommand } from "./proxy.ts";
import { statusCommand } from "./status.ts";
import { updateCommand } from "./update.ts";

/** The version printed by `mrr --version`, from deno.json. */
export const VERSION: string = denoJson.version;

/** Every command, in help order. */
export const COMMANDS: Command[] = [
  initCommand,
  createCommand,
  statusCommand,
  updateCommand,
  deleteCommand,
  proxyCommand,
  credentialsCommand,
  eventsCommand,
  logsCommand,
];

const MAIN_HINT = 'Run "mrr help" for the list of commands';

function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases.includes(name));
}

function isHelpFlag(arg: string | undefined): boolean {
  return arg === "-h" || arg === "--help" || arg === "-help";
}

async function dispatch(args: string[], ctx: Context): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined || isHelpFlag(first)) {
    println(ctx.stdout, mainHelp(COMMANDS, VERSION));
    return 0;
  }
  if (first === "-v" || first === "--version" || first === "-version") {
    println(ctx.stdout, `mrr version ${VERSION}`);
    return 0;
  }
  if (first === "help" || first === "h") {
    const [topic, extra] = rest;
    if (topic === undefined) {
      println(ctx.stdout, mainHelp(COMMANDS, VERSION));
      return 0;
    }
    const command = findCommand(topic);
    if (!command) throw new UsageError(`Unknown command "${topic}"`, MAIN_HINT);
    if (extra !== undefined) throw new UsageError(`Unexpected argument "${extra}"`, MAIN_HINT);
    println(ctx.stdout, commandHelp(command));
    return 0;
  }
  if (first.startsWith("-")) throw new UsageError(`Unknown global option "${first}"`, MAIN_HINT);
  const command = findCommand(first);
  if (!command) throw new UsageError(`Unknown command "${first}"`, MAIN_HINT);
  if (rest.some(isHelpFlag)) {
    println(ctx.stdout, commandHelp(command));
    return 0;
  }
  return await command.run(rest, ctx);
}

function red(ctx: Context, text: string): string {
  return ctx.stderr.isTerminal && !ctx.env("NO_COLOR") ? `\x1b[31m${text}\x1b[0m` : text;
}

/**
 * Runs `mrr` with `args` (without the program name) and returns the exit
 * code. Writes to the real stdout/stderr unless given a `ctx`.
 */
export async function run(args: string[], ctx: Context = denoContext()): Promise<number> {
  try {
    return await dispatch(args, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      println(ctx.stderr, red(ctx, error.message));
      if (error.hint) println(ctx.stderr, error.hint);
      return 2;
    }
    if (error instanceof CommandError) {
      println(ctx.stderr, red(ctx, `Error: ${error.message}`));
      if (error.hint) println(ctx.stderr, error.hint);
      return 1;
    }
    // A bug: show everything.
    println(ctx.stderr, `mrr ${VERSION} failed unexpectedly (this is a bug):`);
    println(ctx.stderr, error instanceof Error ? error.stack ?? String(error) : String(error));
    return 1;
  }
}
