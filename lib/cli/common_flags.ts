/**
 * Flags and checks shared by several commands.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { type FlagSpec, type ParsedFlags, parseDurationFlag, stringFlag } from "./flags.ts";

/** Default of `--timeout` for `-w`. */
export const DEFAULT_WAIT_TIMEOUT_MS = 120_000;

/** Longest instance name accepted. */
export const MAX_NAME_LENGTH = 64;

/** `-n`, `--name`, `-name`. */
export const NAME_FLAG: FlagSpec = {
  name: "name",
  short: "n",
  type: "string",
  placeholder: "NAME",
  description: 'name of the Redis instance (letters, digits, "-" and "_")',
};

/** `-w`, `--wait`, `-wait`. */
export const WAIT_FLAG: FlagSpec = {
  name: "wait",
  short: "w",
  type: "boolean",
  description: "", // set per command
};

/** `--timeout`, `-timeout`. */
export const TIMEOUT_FLAG: FlagSpec = {
  name: "timeout",
  type: "string",
  placeholder: "DUR",
  description: "how long -w waits: 90, 90s, 2m (default 2m)",
};

/** Returns the instance name from `-n`, checked; throws when missing or invalid. */
export function requireName(parsed: ParsedFlags, hint: string): string {
  const flag = stringFlag(parsed, "name");
  if (!flag) throw new UsageError('Option "-n" is required: the name of the instance', hint);
  if (!/^[A-Za-z0-9_-]+$/.test(flag.value) || flag.value.length > MAX_NAME_LENGTH) {
    throw new UsageError(
      `Option "${flag.spelled}" must be a name of up to ${MAX_NAME_LENGTH} letters, digits, "-" and "_", but got "${flag.value}"`,
      hint,
    );
  }
  return flag.value;
}

/** Returns `--timeout` in ms, or the default. */
export function waitTimeout(parsed: ParsedFlags, hint: string): number {
  const flag = stringFlag(parsed, "timeout");
  return flag ? parseDurationFlag(flag, hint) : DEFAULT_WAIT_TIMEOUT_MS;
}

/** Rejects positional arguments, suggesting `-n` when one looks like a name. */
export function noPositionals(parsed: ParsedFlags, hint: string): void {
  const extra = parsed.positionals[0];
  if (extra === undefined) return;
  const suggestion = /^[A-Za-z0-9_-]+$/.test(extra) && !parsed.flags.has("name")
    ? ` (did you mean "-n ${extra}"?)`
    : "";
  throw new UsageError(`Unexpected argument "${extra}"${suggestion}`, hint);
}
