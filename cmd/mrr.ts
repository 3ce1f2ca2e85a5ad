/**
 * `mrr`, the command-line client of mr-redis.
 *
 * ```sh
 * mrr init http://10.0.0.1:5656
 * mrr create -n cache1 -m 200 -s 2 -w
 * mrr status -n cache1
 * mrr delete -n cache1
 * ```
 *
 * @module
 */

import { run } from "../lib/cli/main.ts";

/** Runs `mrr` with `args`; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return run(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
