/**
 * A small, bounded client for the commands the executor sends to its own
 * redis-server processes, on the RESP connection of `resp.ts` (no client
 * library: the executor starts faster without one).
 *
 * Every call has a deadline. There is no offline queue and no automatic
 * reconnection: a connection that failed or timed out is dropped and the next
 * call opens a fresh one, so a hung server never piles up queued commands.
 * With a password, every new connection sends `AUTH [username] password`
 * first.
 *
 * @module
 */

import { parseInfo, type RedisInfo } from "./info.ts";
import { RedisReplyError, RespConnection } from "./resp.ts";

export { RedisReplyError } from "./resp.ts";

/** `hz` while a promoted process writes its first AOF (see `RedisClient.enableAof`). */
const FAST_HZ = 100;

/** Options of {@linkcode RedisClient}. */
export interface RedisClientOptions {
  /** Host of the redis-server. Default `127.0.0.1`. */
  host?: string;
  /** Port of the redis-server. */
  port: number;
  /** Deadline of one call (connecting included), in ms. Default 1500. */
  timeoutMs?: number;
  /** ACL user sent with AUTH (only with `password`). Default: none (the `default` user). */
  username?: string;
  /** Password sent with AUTH on every new connection. Default: no AUTH. */
  password?: string;
  /** Receives one line per connection error. Default: errors are dropped. */
  log?: (line: string) => void;
}

/** Raised when a call to redis-server gets no answer before its deadline. */
export class RedisTimeoutError extends Error {
  /** Makes the error for `what` after `timeoutMs`. */
  constructor(what: string, timeoutMs: number) {
    super(`Redis command ${what} got no answer within ${timeoutMs} ms`);
    this.name = "RedisTimeoutError";
  }
}

/** Bounded commands against one redis-server. */
export class RedisClient {
  /** Host of the redis-server. */
  readonly host: string;
  /** Port of the redis-server. */
  readonly port: number;
  readonly #timeoutMs: number;
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #log: ((line: string) => void) | undefined;
  #connecting: Promise<RespConnection> | undefined;
  #closed = false;

  /** Makes a client; nothing is connected until the first call. */
  constructor(options: RedisClientOptions) {
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
      throw new RangeError(`Cannot create Redis client: invalid port ${options.port}`);
    }
    const timeoutMs = options.timeoutMs ?? 1500;
    if (!(timeoutMs > 0)) {
      throw new RangeError(`Cannot create Redis client: invalid timeoutMs ${timeoutMs}`);
    }
    if (options.username !== undefined && options.password === undefined) {
      throw new TypeError(
        `Cannot create Redis client: username "${options.username}" given without a password`,
      );
    }
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port;
    this.#timeoutMs = timeoutMs;
    this.#username = options.username;
    this.#password = options.password;
    this.#log = options.log;
  }

  /**
   * A client of the same server, with the same credentials, on a connection
   * of its own: for a command that blocks (`WAIT`) while this client's
   * callers go on. Close it after use.
   */
  detached(): RedisClient {
    return new RedisClient({
      host: this.host,
      port: this.port,
      timeoutMs: this.#timeoutMs,
      ...(this.#password !== undefined
        ? {
          password: this.#password,
          ...(this.#username !== undefined ? { username: this.#username } : {}),
        }
        : {}),
      ...(this.#log ? { log: this.#log } : {}),
    });
  }

  /** The open connection, or a new one (authenticated when a password is set). */
  #connection(): Promise<RespConnection> {
    if (this.#connecting) return this.#connecting;
    const connecting = (async () => {
      const conn = await RespConnection.open(this.host, this.port);
      conn.closed.then(() => {
        if (this.#connecting === connecting) this.#connecting = undefined;
      });
      if (this.#password !== undefined) {
        const args = this.#username !== undefined
          ? ["AUTH", this.#username, this.#password]
          : ["AUTH", this.#password];
        const answer = await conn.send(args);
        if (answer instanceof RedisReplyError) {
          conn.close();
          throw new RedisReplyError(
            `Cannot authenticate to ${this.host}:${this.port}${
              this.#username !== undefined ? ` as "${this.#username}"` : ""
            }: ${answer.message}`,
          );
        }
      }
      return conn;
    })();
    connecting.catch((error) => {
      if (this.#connecting === connecting) this.#connecting = undefined;
      this.#log?.(
        `Redis connection to ${this.host}:${this.port} failed: ${(error as Error).message}`,
      );
    });
    this.#connecting = connecting;
    return connecting;
  }

  #drop(): void {
    const connecting = this.#connecting;
    this.#connecting = undefined;
    connecting?.then((conn) => conn.close(), () => {});
  }

  /**
   * Sends one command and returns its answer. Rejects with a
   * {@linkcode RedisTimeoutError} after `timeoutMs` (the connection is then
   * dropped), or with the error redis-server answered (a
   * {@linkcode RedisReplyError}, named `ReplyError`).
   */
  async call(
    command: string,
    args: (string | number)[] = [],
    timeoutMs: number = this.#timeoutMs,
  ): Promise<unknown> {
    if (this.#closed) {
      throw new Error(`Cannot send ${command} to ${this.host}:${this.port}: client closed`);
    }
    const connecting = this.#connection();
    const work = (async () => {
      const conn = await connecting;
      const answer = await conn.send([command, ...args]);
      if (answer instanceof RedisReplyError) throw answer;
      return answer;
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RedisTimeoutError(`${command} to ${this.host}:${this.port}`, timeoutMs)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([work, deadline]);
    } catch (error) {
      work.catch(() => {});
      // A reply error (an answer) keeps the connection; anything else drops it.
      if (
        !(error instanceof RedisReplyError) || !(await connecting.then(() => true, () => false))
      ) {
        if (this.#connecting === connecting) this.#drop();
        else connecting.then((conn) => conn.close(), () => {});
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends PING; resolves when any answer (even an error such as LOADING) arrives in time. */
  async ping(timeoutMs: number = this.#timeoutMs): Promise<void> {
    try {
      await this.call("PING", [], timeoutMs);
    } catch (error) {
      if (error instanceof Error && error.name === "ReplyError") return;
      throw error;
    }
  }

  /** Returns the raw text of `INFO` (default sections). */
  async infoText(timeoutMs: number = this.#timeoutMs): Promise<string> {
    return String(await this.call("INFO", [], timeoutMs));
  }

  /** Returns the parsed `INFO`. */
  async info(timeoutMs: number = this.#timeoutMs): Promise<RedisInfo> {
    return parseInfo(await this.infoText(timeoutMs));
  }

  /** Returns the first element of `ROLE`: `master`, `slave` or `sentinel`. */
  async role(timeoutMs: number = this.#timeoutMs): Promise<string> {
    const answer = await this.call("ROLE", [], timeoutMs);
    if (!Array.isArray(answer) || typeof answer[0] !== "string") {
      throw new TypeError(`Cannot read ROLE of ${this.host}:${this.port}: unexpected answer`);
    }
    return answer[0];
  }

  /** `REPLICAOF host port`: makes the server replicate from another one. */
  async replicaOf(host: string, port: number, timeoutMs: number = this.#timeoutMs): Promise<void> {
    await this.call("REPLICAOF", [host, port], timeoutMs);
  }

  /**
   * `REPLICAOF NO ONE`: makes the server a master. Returns its replication
   * offset right after the promotion (`master_repl_offset`).
   */
  async promote(timeoutMs: number = this.#timeoutMs): Promise<number> {
    await this.call("REPLICAOF", ["NO", "ONE"], timeoutMs);
    return (await this.info(timeoutMs)).masterReplOffset;
  }

  /**
   * Turns the append-only file on (`CONFIG SET appendonly yes`) and resolves
   * once it is really on: the first rewrite, which writes the whole dataset
   * to it, has finished. Until then a crash would lose what the process
   * holds. Returns at once when the AOF is already on. Rejects when the
   * rewrite failed or did not finish within `timeoutMs`.
   *
   * redis notices the end of the rewrite's child process in its cron, which
   * runs `hz` times a second (10 by default: up to 100 ms after the child
   * ended, most of a failover's time). The rewrite runs with `hz` 100 and
   * the server's own value comes back afterwards, whatever the outcome.
   */
  async enableAof(timeoutMs: number = this.#timeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const persistence = async () => {
      const text = String(await this.call("INFO", ["persistence"], left()));
      return new Map(
        text.split("\r\n").filter((l) => l.includes(":")).map((l) => {
          const i = l.indexOf(":");
          return [l.slice(0, i), l.slice(i + 1)] as const;
        }),
      );
    };
    const done = (p: Map<string, string>) =>
      p.get("aof_enabled") === "1" && p.get("aof_rewrite_in_progress") === "0" &&
      p.get("aof_rewrite_scheduled") === "0";
    if (done(await persistence())) return;
    const hz = await this.call("CONFIG", ["GET", "hz"], left());
    const ownHz = Array.isArray(hz) && /^\d+$/.test(String(hz[1])) ? String(hz[1]) : "10";
    const fastHz = Number(ownHz) < FAST_HZ;
    if (fastHz) await this.call("CONFIG", ["SET", "hz", String(FAST_HZ)], left());
    try {
      await this.call("CONFIG", ["SET", "appendonly", "yes"], left());
      // redis tells the end of the rewrite only in INFO: ask briefly and often
      // (the rewrite of a small dataset takes milliseconds).
      for (let wait = 2;; wait = Math.min(50, wait * 2)) {
        const p = await persistence();
        if (done(p)) {
          if (p.get("aof_last_bgrewrite_status") !== "ok") {
            throw new Error(
              `Cannot turn on the AOF of ${this.host}:${this.port}: its rewrite failed`,
            );
          }
          return;
        }
        if (Date.now() + wait >= deadline) {
          throw new RedisTimeoutError(`AOF rewrite on ${this.host}:${this.port}`, timeoutMs);
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      if (fastHz) {
        await this.call("CONFIG", ["SET", "hz", ownHz], Math.max(left(), 1000)).catch(() => {});
      }
    }
  }

  /**
   * Sets `min-replicas-max-lag` then `min-replicas-to-write` (two `CONFIG SET`
   * calls, so redis older than 7 understands them). A master refuses writes
   * with `NOREPLICAS` while fewer than `minReplicas` replicas acknowledged
   * within `maxLagSeconds`; 0 replicas turns that off.
   */
  async setMinReplicas(
    minReplicas: number,
    maxLagSeconds: number,
    timeoutMs: number = this.#timeoutMs,
  ): Promise<void> {
    await this.call("CONFIG", ["SET", "min-replicas-max-lag", maxLagSeconds], timeoutMs);
    await this.call("CONFIG", ["SET", "min-replicas-to-write", minReplicas], timeoutMs);
  }

  /**
   * `SHUTDOWN NOSAVE` (or `SAVE`). Resolves once the server closed the
   * connection; rejects with the server's error when it refused.
   */
  async shutdown(save: boolean = false, timeoutMs: number = this.#timeoutMs): Promise<void> {
    try {
      await this.call("SHUTDOWN", [save ? "SAVE" : "NOSAVE"], timeoutMs);
    } catch (error) {
      if (error instanceof Error && error.name === "ReplyError") throw error;
      if (error instanceof RedisTimeoutError) throw error;
      // The server closing the connection is the expected outcome.
    } finally {
      this.#drop();
    }
  }

  /** Closes the connection; later calls fail. */
  close(): void {
    this.#closed = true;
    this.#drop();
  }
}
