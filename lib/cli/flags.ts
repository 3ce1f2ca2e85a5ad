/**
 * Go-style command-line flags, as the original `mrr` accepted them: `-n NAME`,
 * `-n=NAME`, `--name NAME`, `--name=NAME`, `-name NAME` and `-name=NAME`.
 * A flag that takes a value always takes the next argument, so `-s -1`
 * reaches the value check (and fails there with a clear message) instead of
 * being mistaken for an unknown flag. Boolean flags accept `-w`, `-w=true`,
 * `-w=false` and, like the original's documented `-w true`, a following
 * `true` or `false`.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** One flag a command accepts. */
export interface FlagSpec {
  /** Long name, accepted as `--name` and `-name`. */
  name: string;
  /** One-letter name, accepted as `-n` (and `--n`). */
  short?: string;
  /** `string` flags take a value; `boolean` flags do not. */
  type: "string" | "boolean";
  /** Placeholder for the value in help, e.g. `MB`. */
  placeholder?: string;
  /** One line for the help screen. */
  description: string;
}

/** One flag as given on the command line. */
export interface FlagValue {
  /** The value: a string for `string` flags, a boolean for `boolean` flags. */
  value: string | boolean;
  /** The flag as the user spelled it, e.g. `-m` or `--memory`, for messages. */
  spelled: string;
}

/** The result of {@linkcode parseFlags}. */
export interface ParsedFlags {
  /** Given flags by long name; the last occurrence wins. */
  flags: Map<string, FlagValue>;
  /** Arguments that are not flags, in order. */
  positionals: string[];
  /** True when `-h`, `-help` or `--help` was given. */
  help: boolean;
}

const BOOLEAN_WORDS: Record<string, boolean> = {
  "true": true,
  "false": false,
  "1": true,
  "0": false,
  "t": true,
  "f": false,
};

function looksLikeFlag(arg: string): boolean {
  return arg.length > 1 && arg.startsWith("-") && !/^-\d/.test(arg);
}

/**
 * Parses `args` against `specs`. Throws {@linkcode UsageError} with `hint` for
 * an unknown flag, a missing value or a bad boolean.
 */
export function parseFlags(args: string[], specs: FlagSpec[], hint: string): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  for (const spec of specs) {
    byName.set(spec.name, spec);
    if (spec.short) byName.set(spec.short, spec);
  }
  const isKnownFlag = (arg: string): boolean => {
    if (!looksLikeFlag(arg)) return false;
    const key = arg.replace(/^--?/, "").split("=", 1)[0] ?? "";
    return byName.has(key) || key === "h" || key === "help";
  };

  const result: ParsedFlags = { flags: new Map(), positionals: [], help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      result.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!looksLikeFlag(arg)) {
      result.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const spelled = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const key = spelled.replace(/^--?/, "");
    if (key === "h" || key === "help") {
      result.help = true;
      continue;
    }
    const spec = byName.get(key);
    if (!spec) throw new UsageError(`Unknown option "${spelled}"`, hint);

    if (spec.type === "boolean") {
      let value = true;
      if (inline !== undefined) {
        const parsed = BOOLEAN_WORDS[inline.toLowerCase()];
        if (parsed === undefined) {
          throw new UsageError(
            `Option "${spelled}" must be true or false, but got "${inline}"`,
            hint,
          );
        }
        value = parsed;
      } else {
        const next = args[i + 1]?.toLowerCase();
        if (next === "true" || next === "false") {
          value = next === "true";
          i++;
        }
      }
      result.flags.set(spec.name, { value, spelled });
      continue;
    }

    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next !== undefined && !isKnownFlag(next)) {
        value = next;
        i++;
      }
    }
    if (value === undefined || value === "") {
      throw new UsageError(`Option "${spelled}" needs a value (${spec.description})`, hint);
    }
    result.flags.set(spec.name, { value, spelled });
  }
  return result;
}

/** Returns the string value of flag `name`, or undefined when it was not given. */
export function stringFlag(
  parsed: ParsedFlags,
  name: string,
): FlagValue & { value: string } | undefined {
  const flag = parsed.flags.get(name);
  return flag && typeof flag.value === "string"
    ? { value: flag.value, spelled: flag.spelled }
    : undefined;
}

/** Returns whether boolean flag `name` was given and true. */
export function booleanFlag(parsed: ParsedFlags, name: string): boolean {
  return parsed.flags.get(name)?.value === true;
}

/**
 * Parses a whole number (digits only) no smaller than `min`. `what` completes
 * the message: `Option "-m" must be {what}, but got "abc"`.
 */
export function parseWholeNumber(
  flag: FlagValue & { value: string },
  min: number,
  what: string,
  hint: string,
): number {
  const text = flag.value.trim();
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`Option "${flag.spelled}" must be ${what}, but got "${flag.value}"`, hint);
  }
  return n;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration into milliseconds: a bare number of seconds (`90`), or
 * Go-style parts (`90s`, `2m`, `1m30s`, `500ms`, `1h`). Returns undefined when
 * `text` is not a positive duration.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) {
    const ms = Number(s) * 1000;
    return ms > 0 ? ms : undefined;
  }
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    part.lastIndex = at;
    const m = part.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    at = part.lastIndex;
  }
  return s.length > 0 && total > 0 ? Math.round(total) : undefined;
}

/** Parses a duration flag (see {@linkcode parseDuration}); throws a {@linkcode UsageError}. */
export function parseDurationFlag(flag: FlagValue & { value: string }, hint: string): number {
  const ms = parseDuration(flag.value);
  if (ms === undefined) {
    throw new UsageError(
      `Option "${flag.spelled}" must be a duration such as 90, 90s or 2m, but got "${flag.value}"`,
      hint,
    );
  }
  return ms;
}

/** Formats milliseconds the way {@linkcode parseDuration} reads them, e.g. `2m`, `1m30s`, `500ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000 && ms % 1000 !== 0) return `${Math.round(ms / 100) / 10}s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const sec = totalSeconds % 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${sec || (!h && !m) ? `${sec}s` : ""}`;
}
