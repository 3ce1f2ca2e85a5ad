/**
 * Checks a `GET /v1/LOGS/{name}/{processId}?lines=N` request: the name, the
 * process id (`p1`, `p2`, ...) and the bounded line count.
 *
 * @module
 */
import { HttpError } from "./http_error.ts";
import { parseName } from "./validate.ts";
import { DEFAULT_LOG_LINES, MAX_LOG_LINES } from "../executor/log_tail.ts";

/** A checked LOGS request. */
export interface LogsRequest {
  name: string;
  procId: string;
  lines: number;
}

/** Parses the path segments after `/v1/LOGS/` and the query; throws a 400 naming the bad part. */
export function parseLogsRequest(args: string[], query: URLSearchParams): LogsRequest {
  if (args.length < 2 || args.at(-1) === "") {
    throw new HttpError(400, "LOGS needs /v1/LOGS/{name}/{processId}, e.g. /v1/LOGS/cache1/p1");
  }
  const name = parseName(args.slice(0, -1).join("/"));
  const procId = args.at(-1)!;
  if (!/^p[1-9][0-9]{0,5}$/.test(procId)) {
    throw new HttpError(
      400,
      `Process id ${JSON.stringify(procId)} is not valid: expected p1, p2, ... (the Id in STATUS)`,
    );
  }
  const raw = query.get("lines");
  let lines = DEFAULT_LOG_LINES;
  if (raw !== null) {
    lines = /^[0-9]{1,7}$/.test(raw) ? Number(raw) : NaN;
    if (!(lines >= 1 && lines <= MAX_LOG_LINES)) {
      throw new HttpError(
        400,
        `Query "lines" must be a whole number from 1 to ${MAX_LOG_LINES}, but got ${
          JSON.stringify(raw)
        }`,
      );
    }
  }
  return { name, procId, lines };
}
