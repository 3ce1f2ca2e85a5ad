/**
 * Reads the end of a redis-server log for `GET /v1/LOGS/{name}/{processId}`:
 * the last N lines, within a byte bound so that the answer fits a Mesos
 * message, without reading a large log whole.
 *
 * @module
 */
import { REDIS_LOG_FILE } from "../redis/server.ts";

/** The most lines a request may ask for. */
export const MAX_LOG_LINES = 1000;
/** Lines answered when a request names none. */
export const DEFAULT_LOG_LINES = 100;
/** The most bytes of log text in one answer (the newest are kept). */
export const MAX_LOG_BYTES = 64 * 1024;

/** What {@linkcode tailLog} read. */
export interface LogTail {
  /** The last lines, oldest first (no trailing newline). */
  lines: string[];
  /** Older lines exist than those returned. */
  truncated: boolean;
}

/**
 * The last `lines` lines of the file at `path`, at most `maxBytes` bytes of
 * them (a longer last line is cut to its end). Throws `Deno.errors.NotFound`
 * when the file does not exist.
 */
export async function tailLog(
  path: string,
  lines: number,
  maxBytes: number = MAX_LOG_BYTES,
): Promise<LogTail> {
  if (!Number.isInteger(lines) || lines < 1 || lines > MAX_LOG_LINES) {
    throw new RangeError(
      `Log lines must be a whole number from 1 to ${MAX_LOG_LINES}, but got ${lines}`,
    );
  }
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    // One byte more than the bound, to tell whether the first line read is whole.
    const start = Math.max(0, size - maxBytes - 1);
    await file.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let read = 0;
    while (read < buffer.length) {
      const n = await file.read(buffer.subarray(read));
      if (n === null) break;
      read += n;
    }
    let text = new TextDecoder().decode(buffer.subarray(0, read));
    let cut = start > 0;
    if (cut) {
      // The first line is partial (or the byte before it was the extra one): drop it.
      const nl = text.indexOf("\n");
      text = nl === -1 ? text.slice(-maxBytes) : text.slice(nl + 1);
    }
    const all = text.split("\n");
    if (all.at(-1) === "") all.pop();
    const kept = all.slice(-lines);
    cut ||= kept.length < all.length;
    return { lines: kept, truncated: cut };
  } finally {
    file.close();
  }
}

/**
 * The tail of the redis-server log of the data dir `dataDir` (one path
 * segment, as in a task spec) under `dataRoot`. Throws a `TypeError` for a
 * bad name or count and an `Error` naming the dir when there is no log.
 */
export async function readTaskLog(
  dataRoot: string,
  dataDir: unknown,
  lines: unknown,
): Promise<LogTail> {
  if (typeof dataDir !== "string" || !/^[A-Za-z0-9_.-]+$/.test(dataDir) || /^\.+$/.test(dataDir)) {
    throw new TypeError(`Cannot read a log: bad data dir name ${JSON.stringify(dataDir)}`);
  }
  if (typeof lines !== "number" || !Number.isInteger(lines) || lines < 1 || lines > MAX_LOG_LINES) {
    throw new TypeError(
      `Cannot read a log: lines must be a whole number from 1 to ${MAX_LOG_LINES}, but got ${
        JSON.stringify(lines)
      }`,
    );
  }
  try {
    return await tailLog(`${dataRoot}/${dataDir}/${REDIS_LOG_FILE}`, lines);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`No redis-server log in data dir "${dataDir}" on this agent`);
    }
    throw error;
  }
}
