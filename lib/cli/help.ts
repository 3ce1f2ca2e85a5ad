/**
 * The help screens: the list of commands and the help of one command.
 *
 * @module
 */

import type { Command } from "./command.ts";
import type { FlagSpec } from "./flags.ts";

function flagLabel(flag: FlagSpec): string {
  const names = [`--${flag.name}`, ...(flag.short ? [`-${flag.short}`] : [])].join(", ");
  return flag.placeholder ? `${names} ${flag.placeholder}` : names;
}

function columns(rows: [string, string][], indent = "   "): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}   ${right}`);
}

/** The help screen listing every command. */
export function mainHelp(commands: Command[], version: string): string {
  return [
    "NAME:",
    "   mrr - command-line client of mr-redis, Redis as a service on Apache Mesos",
    "",
    "USAGE:",
    "   mrr [global options] command [command options]",
    "",
    "VERSION:",
    `   ${version}`,
    "",
    "COMMANDS:",
    ...columns([
      ...commands.map((c): [string, string] => [[c.name, ...c.aliases].join(", "), c.summary]),
      ["help, h", "Show the commands, or the help of one command"],
    ]),
    "",
    "GLOBAL OPTIONS:",
    ...columns([["--help, -h", "show help"], ["--version, -v", "print the version"]]),
    "",
    "ENVIRONMENT:",
    ...columns([
      ["MRR_ENDPOINT", 'scheduler URL; overrides the one saved by "mrr init"'],
      [
        "MRR_CONFIG",
        "config file (default $XDG_CONFIG_HOME/mrr/config.json or ~/.mrr/config.json)",
      ],
    ]),
    "",
    "EXIT CODES:",
    "   0 done, 1 the scheduler refused, failed, could not be reached or timed out,",
    "   2 a mistake on the command line",
    "",
    'Run "mrr help COMMAND" or "mrr COMMAND --help" for the options of a command.',
  ].join("\n");
}

/** The help screen of one command. */
export function commandHelp(command: Command): string {
  const lines = [
    "NAME:",
    `   mrr ${command.name} - ${command.summary}`,
    "",
    "USAGE:",
    `   mrr ${command.usage}`,
  ];
  if (command.aliases.length) {
    lines.push("", "ALIASES:", `   ${command.aliases.join(", ")}`);
  }
  lines.push("", "OPTIONS:");
  lines.push(
    ...columns([
      ...command.flags.map((f): [string, string] => [flagLabel(f), f.description]),
      ["--help, -h", "show this help"],
    ]),
  );
  lines.push(
    "",
    "   Flags may also be written Go-style: -name NAME, -n=NAME, --name=NAME.",
  );
  if (command.notes?.length) lines.push("", ...command.notes.map((n) => `   ${n}`));
  if (command.examples?.length) {
    lines.push("", "EXAMPLES:", ...command.examples.map((e) => `   ${e}`));
  }
  return lines.join("\n");
}
