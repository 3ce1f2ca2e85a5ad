/**
 * What a command may touch besides the network: environment variables and
 * the two output streams. `main` builds it from Deno; keeping it in one
 * object keeps the commands free of globals.
 *
 * @module
 */

import type { Env } from "./user_config.ts";

/** One output stream. */
export interface Output {
  /** Writes `text` as is (add `\n` yourself). */
  write(text: string): void;
  /** True when the stream is a terminal (progress bars, colour). */
  readonly isTerminal: boolean;
  /** The terminal's width in columns now, when known (it can change while mrr runs). */
  columns?(): number | undefined;
}

/** Everything a command needs from its surroundings. */
export interface Context {
  /** Reads an environment variable. */
  env: Env;
  /** Normal output. */
  stdout: Output;
  /** Errors and notes. */
  stderr: Output;
}

const encoder = new TextEncoder();

function denoOutput(file: typeof Deno.stdout | typeof Deno.stderr): Output {
  return {
    write(text: string) {
      const bytes = encoder.encode(text);
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    },
    isTerminal: file.isTerminal(),
    columns() {
      try {
        return Deno.consoleSize().columns || undefined;
      } catch {
        return undefined; // not a terminal
      }
    },
  };
}

/** The context of a real `mrr` process. */
export function denoContext(): Context {
  return {
    env: (name) => Deno.env.get(name),
    stdout: denoOutput(Deno.stdout),
    stderr: denoOutput(Deno.stderr),
  };
}

/** Writes `line` and a newline to `out`. */
export function println(out: Output, line = ""): void {
  out.write(`${line}\n`);
}
