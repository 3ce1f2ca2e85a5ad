/**
 * A direct check of one redis-server: a fresh connection (`resp.ts`), `PING`
 * and `ROLE` pipelined (after `AUTH` when a password is given), one deadline
 * for the whole exchange, the connection closed afterwards. The scheduler
 * asks a process itself instead of trusting that its executor's silence
 * means death.
 *
 * Any reply counts as an answer: an error such as `LOADING`, `NOAUTH` or
 * `BUSY` still proves the server is alive and serving its event loop.
 *
 * @module
 */

import { RespConnection, type RespValue } from "./resp.ts";

/** Where and how to check. */
export interface ProbeTarget {
  /** Host or IP of the redis-server. */
  host: string;
  /** Its port. */
  port: number;
  /** Deadline of the whole exchange (connect included), in ms. */
  timeoutMs: number;
  /** Sent as `AUTH [username] password` first, when set. */
  password?: string;
  /** ACL user for `AUTH` (needs `password`). */
  username?: string;
}

/** What a probe found out. */
export type ProbeResult =
  | {
    ok: true;
    /** First element of `ROLE` (`master`, `slave`), or `unknown` when ROLE was refused. */
    role: string;
    /** Time from the start to the last reply, in ms. */
    latencyMs: number;
  }
  | {
    ok: false;
    /** What failed, one line. */
    error: string;
    /** Time from the start to the failure, in ms. */
    latencyMs: number;
    /** The deadline ran out (rather than a refusal or a broken connection). */
    timedOut: boolean;
  };

/**
 * Checks `target` directly. Never throws: a refusal, a broken connection, a
 * reply that is not RESP or the deadline all come back as `ok: false`.
 */
export async function probeRedis(target: ProbeTarget): Promise<ProbeResult> {
  const began = performance.now();
  const elapsed = () => Math.round(performance.now() - began);
  let conn: RespConnection | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      conn?.close();
      reject(new Error(`no answer within ${target.timeoutMs} ms`));
    }, target.timeoutMs);
  });
  const exchange = async (): Promise<string> => {
    const opened = await RespConnection.open(target.host, target.port);
    conn = opened;
    if (timedOut) opened.close();
    // Pipelined: every reply, error replies included, proves the server serves.
    const replies: Promise<RespValue>[] = [];
    if (target.password !== undefined) {
      replies.push(opened.send(
        target.username !== undefined
          ? ["AUTH", target.username, target.password]
          : ["AUTH", target.password],
      ));
    }
    replies.push(opened.send(["PING"]), opened.send(["ROLE"]));
    const answers = await Promise.all(replies);
    const role = answers[answers.length - 1];
    return Array.isArray(role) && typeof role[0] === "string" ? role[0] : "unknown";
  };
  try {
    const role = await Promise.race([exchange(), deadline]);
    return { ok: true, role, latencyMs: elapsed() };
  } catch (error) {
    return {
      ok: false,
      error: error instanceof Error ? error.message : String(error),
      latencyMs: elapsed(),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
    conn?.close();
  }
}
