/**
 * The shape of one `mrr` command, shared by the commands, the help screens
 * and the dispatcher.
 *
 * @module
 */

import type { Context } from "./context.ts";
import type { FlagSpec } from "./flags.ts";

/** One `mrr` command. */
export interface Command {
  /** The name, e.g. `create`. */
  name: string;
  /** Short names, e.g. `c`. */
  aliases: string[];
  /** One line for the command list. */
  summary: string;
  /** The usage line after `mrr `, e.g. `create -n NAME -m MB [-s SLAVES]`. */
  usage: string;
  /** The flags it accepts (help flags are always accepted). */
  flags: FlagSpec[];
  /** Extra help paragraphs. */
  notes?: string[];
  /** Examples, each a command line. */
  examples?: string[];
  /** Runs the command with the arguments after its name; returns the exit code. */
  run(args: string[], ctx: Context): Promise<number>;
}

/** The hint pointing at a command's help. */
export function usageHint(command: string): string {
  return `Run "mrr help ${command}" for usage`;
}
