/**
 * One `redis-server` child process, configured on its command line.
 *
 * Persistence is the append-only file (`appendonly yes`, `appendfsync
 * everysec`) kept in the data dir, so a restart in place keeps the data. RDB
 * snapshots are turned off (`save ""`): the AOF already holds everything, and
 * periodic snapshots would only add fork pauses and disk writes. Replicas sync
 * diskless with no delay, which is the fast path for a new slave.
 *
 * Durability by role: `appendOnly: false` starts a process without the AOF
 * (the executor does so for slaves, whose data lives in their master and is
 * fetched again by a full sync after a restart); `RedisClient.enableAof`
 * turns it on, waiting for the first rewrite, when such a process becomes a
 * master.
 *
 * The child stays in the caller's process group (no `setsid`), so killing the
 * executor's process group (what a Mesos agent does when it destroys the
 * container) takes the redis-servers with it.
 *
 * @module
 */

import { RedisClient } from "./client.ts";
import { stallMeter } from "./stall_meter.ts";
import { ADMIN_USER, AUTH_CONFIG_FILE, authConfig, redactSecrets, type RedisAuth } from "./auth.ts";

/** How a redis-server process ended. */
export interface RedisExit {
  /** Exit code (`128 + n` when killed by signal `n`). */
  code: number;
  /** The signal that killed it, if any. */
  signal: Deno.Signal | null;
}

/** Options of {@linkcode RedisProcess.start}. */
export interface RedisProcessOptions {
  /** Port to listen on. */
  port: number;
  /** Data dir (created when missing; an existing one is reused as is). */
  dataDir: string;
  /** `maxmemory` in MB. */
  maxMemoryMB: number;
  /** `maxmemory-policy`. Default `noeviction`: writes fail rather than data silently going. */
  maxMemoryPolicy?: string;
  /** Address to bind. Default `127.0.0.1`. */
  bind?: string;
  /** Master to replicate from; absent for a master. */
  replicaOf?: { host: string; port: number };
  /**
   * `min-replicas-to-write`: a master refuses writes (`NOREPLICAS`) while
   * fewer replicas than this acknowledged within `minReplicasMaxLagSeconds`.
   * Dormant while the process is a replica. Default 0 (off).
   */
  minReplicasToWrite?: number;
  /** `min-replicas-max-lag` in whole seconds, 1 or more. Default 10 (redis's own). */
  minReplicasMaxLagSeconds?: number;
  /**
   * The redis-server binary. Default `redis-server` on PATH; a relative path
   * with a `/` is taken from the current directory.
   */
  binary?: string;
  /** How long to wait for the first PING answer, in ms. Default 10000. */
  startTimeoutMs?: number;
  /**
   * Keep the append-only file. Default `true`; `false` for a replica whose
   * data a full sync brings back (turn it on at promotion with
   * `RedisClient.enableAof`).
   */
  appendOnly?: boolean;
  /** Extra `--name value` arguments appended at the end. */
  extraArgs?: string[];
  /**
   * Passwords and ACLs ({@linkcode RedisAuth}): written to a 0600 config file
   * in the data dir, never on the command line; the process's client logs in
   * as the internal user. Absent: no password (instances made before them).
   */
  auth?: RedisAuth;
}

/** Raised when redis-server could not be started. */
export class RedisStartError extends Error {
  /** Makes the error with its message and cause. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisStartError";
  }
}

/** Name of the log file redis-server writes in its data dir. */
export const REDIS_LOG_FILE = "redis-server.log";

const STDERR_TAIL_LINES = 20;

/**
 * How long log text may wait in memory before it is written (ms). A
 * redis-server logs its start in a dozen short writes, and an executor
 * starts dozens at once: copied as they came, each was a `write` system
 * call (and the first an open) in the middle of the burst of spawns.
 * Gathered, a server's start is one or two writes, from one timer for all
 * (the executors' CPU for a 1+50 create: 10 % less). An executor killed
 * outright loses at most this much of the end of its servers' logs.
 */
export const LOG_FLUSH_MS = 200;
/** Log text held past this many bytes is written at once. */
const LOG_FLUSH_BYTES = 64 * 1024;

/**
 * A log file written in batches: text is appended in memory and written
 * by one timer for every log at most {@linkcode LOG_FLUSH_MS} later, on
 * `flush`, or on `close`. The file is opened (created) at the first write.
 * Write errors (a full disk) lose log lines, never the process.
 */
class BatchedLog {
  static readonly #dirty = new Set<BatchedLog>();
  static #timer: ReturnType<typeof setTimeout> | undefined;

  readonly #path: string;
  readonly #encoder = new TextEncoder();
  #file: Deno.FsFile | undefined;
  #pending = "";
  #closed = false;

  constructor(path: string) {
    this.#path = path;
  }

  append(text: string): void {
    if (this.#closed || text === "") return;
    this.#pending += text;
    if (this.#pending.length >= LOG_FLUSH_BYTES) return this.flush();
    BatchedLog.#dirty.add(this);
    if (BatchedLog.#timer === undefined) {
      BatchedLog.#timer = setTimeout(BatchedLog.#flushAll, LOG_FLUSH_MS);
      // Waiting log text does not keep a process alive; close() writes it.
      Deno.unrefTimer(BatchedLog.#timer);
    }
  }

  /** Writes what waits (synchronously: a few KiB to the page cache). */
  flush(): void {
    BatchedLog.#dirty.delete(this);
    if (this.#pending === "") return;
    const bytes = this.#encoder.encode(this.#pending);
    this.#pending = "";
    try {
      this.#file ??= Deno.openSync(this.#path, { append: true, create: true });
      for (let done = 0; done < bytes.length;) done += this.#file.writeSync(bytes.subarray(done));
    } catch {
      // A full disk or a removed dir loses log lines, not the process.
    }
  }

  /** Writes what waits and closes the file; later text is dropped. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    try {
      this.#file?.close();
    } catch {
      // Closed already.
    }
    this.#file = undefined;
  }

  static #flushAll = (): void => {
    BatchedLog.#timer = undefined;
    for (const log of [...BatchedLog.#dirty]) log.flush();
  };
}

/** Program name → where it was found on PATH (see {@linkcode onPath}). */
const pathCache = new Map<string, string>();

/**
 * Where `name` is on PATH (an executable file), found once per process:
 * spawning by name looks through every PATH entry each time, about ten
 * system calls per redis-server an executor starts. `name` itself when it
 * is not found (the spawn then says so).
 */
function onPath(name: string): string {
  const known = pathCache.get(name);
  if (known !== undefined) return known;
  let dirs: string[];
  try {
    dirs = (Deno.env.get("PATH") ?? "").split(":");
  } catch {
    return name; // No permission to read the environment: the spawn looks.
  }
  for (const dir of dirs) {
    if (!dir.startsWith("/")) continue;
    const path = `${dir}/${name}`;
    try {
      const info = Deno.statSync(path);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
        pathCache.set(name, path);
        return path;
      }
    } catch {
      // Not in this one.
    }
  }
  return name;
}

/**
 * The largest `min-replicas-to-write` redis accepts (a C int). Set as a fence,
 * it makes a master refuse every write: no master has that many replicas.
 */
export const MAX_MIN_REPLICAS = 2147483647;

/** Describes an exit for humans: `exited with code 1` or `was killed by SIGKILL`. */
export function describeExit(exit: RedisExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Builds the redis-server command line for `options` (without the binary).
 * With `auth`, the first argument is the auth config file (no secret is on
 * the command line).
 */
export function redisServerArgs(options: RedisProcessOptions): string[] {
  const args = [
    ...(options.auth ? [`${options.dataDir}/${AUTH_CONFIG_FILE}`] : []),
    "--port",
    String(options.port),
    "--bind",
    options.bind ?? "127.0.0.1",
    "--dir",
    options.dataDir,
    // Logs go to stdout, which RedisProcess copies to REDIS_LOG_FILE: its
    // lines are events (ready, sync finished) instead of things to poll for.
    "--logfile",
    "",
    "--daemonize",
    "no",
    "--protected-mode",
    "no",
    "--maxmemory",
    `${options.maxMemoryMB}mb`,
    "--maxmemory-policy",
    options.maxMemoryPolicy ?? "noeviction",
    "--appendonly",
    options.appendOnly === false ? "no" : "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
    // A new replica (an empty data set) loads its master's snapshot straight
    // from the socket: no temporary RDB file written, fsynced and read back.
    "--repl-diskless-load",
    "on-empty-db",
  ];
  if (options.minReplicasToWrite !== undefined) {
    args.push("--min-replicas-to-write", String(options.minReplicasToWrite));
  }
  if (options.minReplicasMaxLagSeconds !== undefined) {
    args.push("--min-replicas-max-lag", String(options.minReplicasMaxLagSeconds));
  }
  if (options.replicaOf) {
    args.push("--replicaof", options.replicaOf.host, String(options.replicaOf.port));
  }
  args.push(...(options.extraArgs ?? []));
  return args;
}

function validate(options: RedisProcessOptions): void {
  const what = "Cannot start redis-server";
  if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
    throw new RangeError(`${what}: invalid port ${options.port}`);
  }
  if (!Number.isInteger(options.maxMemoryMB) || options.maxMemoryMB <= 0) {
    throw new RangeError(
      `${what}: maxMemoryMB must be a positive whole number, but got ${options.maxMemoryMB}`,
    );
  }
  if (!options.dataDir) throw new TypeError(`${what}: dataDir is empty`);
  const n = options.minReplicasToWrite;
  if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > MAX_MIN_REPLICAS)) {
    throw new RangeError(
      `${what}: minReplicasToWrite must be a whole number from 0 to ${MAX_MIN_REPLICAS}, but got ${n}`,
    );
  }
  const lag = options.minReplicasMaxLagSeconds;
  if (lag !== undefined && (!Number.isInteger(lag) || lag < 1)) {
    throw new RangeError(
      `${what}: minReplicasMaxLagSeconds must be a whole number of seconds, 1 or more, but got ${lag}`,
    );
  }
  const r = options.replicaOf;
  if (r && (!r.host || !Number.isInteger(r.port) || r.port <= 0 || r.port > 65535)) {
    throw new RangeError(`${what}: invalid master "${r.host}:${r.port}"`);
  }
}

async function tailOfFile(path: string, lines: number): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").filter((l) => l.trim() !== "").slice(-lines);
  } catch {
    return [];
  }
}

/** A running redis-server child process. */
export class RedisProcess {
  /** Process id. */
  readonly pid: number;
  /** Port it listens on. */
  readonly port: number;
  /** Its data dir. */
  readonly dataDir: string;
  /** Resolves once the process has ended. */
  readonly exited: Promise<RedisExit>;
  /** A client for the process (loopback when bound to a wildcard address). */
  readonly client: RedisClient;
  readonly #child: Deno.ChildProcess;
  readonly #stderrTail: string[] = [];
  readonly #stderrDone: Promise<void>;
  readonly #stdoutDone: Promise<void>;
  readonly #logListeners = new Set<(line: string) => void>();
  readonly #log: BatchedLog;
  #exit: RedisExit | undefined;

  private constructor(child: Deno.ChildProcess, options: RedisProcessOptions) {
    this.#child = child;
    this.pid = child.pid;
    this.port = options.port;
    this.dataDir = options.dataDir;
    const bind = options.bind ?? "127.0.0.1";
    const host = bind === "0.0.0.0" || bind === "*" || bind.includes(" ") ? "127.0.0.1" : bind;
    this.client = new RedisClient({
      host,
      port: options.port,
      ...(options.auth ? { username: ADMIN_USER, password: options.auth.adminPassword } : {}),
    });
    // One log for both streams, written in batches (see BatchedLog).
    this.#log = new BatchedLog(this.logFile);
    this.#stderrDone = this.#readOutput(child.stderr, true);
    this.#stdoutDone = this.#readOutput(child.stdout, false);
    const outputDone = Promise.all([this.#stderrDone, this.#stdoutDone]).finally(() =>
      this.#log.close()
    );
    this.exited = child.status.then(async (status) => {
      await outputDone;
      this.client.close();
      this.#exit = { code: status.code, signal: status.signal };
      return this.#exit;
    });
  }

  /**
   * Starts redis-server and resolves once it logs that it is ready to accept
   * connections (after loading its data), or, when no such line comes
   * within 250 ms (a version that words it otherwise), once it answers PING
   * (not `LOADING`). Rejects with a {@linkcode RedisStartError} (carrying the
   * end of its output) when it exits or stays silent past `startTimeoutMs`;
   * the process is then killed.
   */
  static async start(options: RedisProcessOptions): Promise<RedisProcess> {
    validate(options);
    // The file work is synchronous on purpose: a few small local file
    // operations take microseconds, while each asynchronous one is a trip
    // through the blocking thread pool and one more turn of the event loop,
    // and an executor starting dozens of redis-servers waits for the CPU
    // (behind those redis-servers) at every turn.
    Deno.mkdirSync(options.dataDir, { recursive: true });
    // Absolute for --dir and the log file. Not realpath: one readlink per
    // path component, each a system call of an executor starting dozens.
    if (!options.dataDir.startsWith("/")) {
      options = { ...options, dataDir: `${Deno.cwd()}/${options.dataDir}` };
    }
    if (options.auth) {
      const path = `${options.dataDir}/${AUTH_CONFIG_FILE}`;
      const text = authConfig(options.auth);
      try {
        // A new file is owner-only from the first byte (one open, the usual case).
        Deno.writeTextFileSync(path, text, { mode: 0o600, createNew: true });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        // Owner-only before the secrets go in, also when an older file had wider permissions.
        Deno.writeTextFileSync(path, "", { mode: 0o600 });
        Deno.chmodSync(path, 0o600);
        Deno.writeTextFileSync(path, text, { mode: 0o600 });
      }
    }
    let binary = options.binary ?? "redis-server";
    // The child runs in the data dir: a relative path (`./redis-server`) means the caller's cwd.
    if (binary.includes("/") && !binary.startsWith("/")) binary = `${Deno.cwd()}/${binary}`;
    let child: Deno.ChildProcess;
    try {
      const command = (path: string) =>
        new Deno.Command(path, {
          args: redisServerArgs(options),
          cwd: options.dataDir,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      const found = binary.includes("/") ? binary : onPath(binary);
      try {
        child = command(found);
      } catch (error) {
        // Moved since it was found: look again.
        if (found === binary || !(error instanceof Deno.errors.NotFound)) throw error;
        pathCache.delete(binary);
        child = command(binary);
      }
    } catch (cause) {
      throw new RedisStartError(
        `Cannot start redis-server "${binary}" on port ${options.port}: ${
          (cause as Error).message
        }`,
        { cause },
      );
    }
    const proc = new RedisProcess(child, options);
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const began = Date.now();
    let ended = false;
    proc.exited.then(() => ended = true);
    // Time this process's own event loop spent stalled (a busy machine, a
    // burst of spawns) does not count against the budget: an answer may have
    // sat unread meanwhile. Bounded all the same, at 6 × the budget.
    const releaseMeter = stallMeter.acquire();
    const deadline = () =>
      Math.min(began + 6 * timeoutMs, began + timeoutMs + stallMeter.stalledSince(began));
    // redis-server says when it is ready (listening, its data loaded): that
    // line is the answer, with no PING round trip (three turns of a busy
    // event loop with the login); PING on a timer is the fallback for a
    // version that says it otherwise.
    let ready!: () => void;
    let sawReady = false;
    const readyLine = new Promise<void>((resolve) => ready = resolve);
    const off = proc.onLog((line) => {
      if (/Ready to accept connections/i.test(line)) (sawReady = true, ready());
    });
    try {
      while (!ended && Date.now() < deadline()) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          readyLine,
          proc.exited,
          new Promise((r) => timer = setTimeout(r, Math.min(250, deadline() - Date.now()))),
        ]);
        clearTimeout(timer);
        if (ended) break;
        if (sawReady) return proc;
        try {
          // Ready means serving: a LOADING answer (AOF or RDB still being read)
          // is alive but not ready, so keep waiting.
          await proc.client.call("PING", [], Math.max(100, Math.min(1000, deadline() - Date.now())))
            .catch((error: Error) => {
              if (error.name === "ReplyError" && !/^LOADING\b/.test(error.message)) return;
              throw error;
            });
          return proc;
        } catch {
          // Not yet (not listening, or still loading): try again shortly.
          await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 20))]);
        }
      }
    } finally {
      off();
      releaseMeter();
    }
    let why: string;
    if (ended) {
      why = describeExit(await proc.exited);
    } else {
      proc.kill("SIGKILL");
      await proc.exited;
      why = `did not answer PING within ${timeoutMs} ms`;
    }
    const output = [...proc.#stderrTail, ...await tailOfFile(proc.logFile, 5)];
    throw new RedisStartError(redactSecrets(
      `Cannot start redis-server on port ${options.port}: it ${why}${
        output.length ? `; last output: ${output.join(" | ")}` : ""
      }`,
      options.auth,
    ));
  }

  /** Path of the log file (redis-server's log, copied from its stdout, and its stderr). */
  get logFile(): string {
    return `${this.dataDir}/${REDIS_LOG_FILE}`;
  }

  /** How the process ended, once it has. */
  get exit(): RedisExit | undefined {
    return this.#exit;
  }

  /** The last lines redis-server wrote to stderr (early failures land there). */
  get stderrTail(): readonly string[] {
    return this.#stderrTail;
  }

  /**
   * Calls `listener` with every line redis-server logs from now on (its
   * log goes to stdout; see {@linkcode redisServerArgs}). Returns the
   * function that stops it.
   */
  onLog(listener: (line: string) => void): () => void {
    this.#logListeners.add(listener);
    return () => this.#logListeners.delete(listener);
  }

  /**
   * Writes the log lines read so far to the log file now (they otherwise
   * wait up to {@linkcode LOG_FLUSH_MS}): before the file is read.
   */
  flushLog(): void {
    this.#log.flush();
  }

  /**
   * Copies one output stream to the log file line by line (stderr also kept
   * in a tail), through the batched log. Read with one reused buffer (a BYOB
   * reader) and decoded in place: the default reader allocates a fresh
   * 64 KiB buffer for every read and a `TextDecoderStream` adds a stream
   * stage per chunk, and an executor starting dozens of redis-servers reads
   * thousands of short log lines.
   */
  async #readOutput(output: ReadableStream<Uint8Array>, isStderr: boolean): Promise<void> {
    const append = (text: string) => this.#log.append(text);
    const decoder = new TextDecoder();
    let partial = "";
    const take = (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      let text = "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        if (isStderr) {
          this.#stderrTail.push(line);
          if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
          text += `[stderr] ${line}\n`;
        } else {
          text += `${line}\n`;
          for (const listener of this.#logListeners) {
            try {
              listener(line);
            } catch {
              // A listener owns its errors.
            }
          }
        }
      }
      if (text) append(text);
    };
    let reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = output.getReader({ mode: "byob" });
    } catch {
      reader = output.getReader(); // Not a byte stream.
    }
    let buffer = new ArrayBuffer(16 * 1024);
    try {
      while (true) {
        const { value, done } = reader instanceof ReadableStreamBYOBReader
          ? await reader.read(new Uint8Array(buffer))
          : await reader.read();
        if (done || !value) break;
        if (reader instanceof ReadableStreamBYOBReader) buffer = value.buffer as ArrayBuffer;
        take(decoder.decode(value, { stream: true }));
      }
      take(decoder.decode());
      if (partial.trim() !== "" && isStderr) this.#stderrTail.push(partial);
      if (partial.trim() !== "") append(`${partial}\n`);
    } catch {
      // The pipe broke; nothing more to read.
    } finally {
      reader.releaseLock();
    }
  }

  /** Sends a signal (default SIGKILL); does nothing once the process has ended. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.#exit) return;
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /**
   * Stops the process: `SHUTDOWN NOSAVE` (or `SAVE`; the AOF is flushed
   * either way) when `graceful`, asked again every 100 ms while redis-server
   * refuses (it does while writing its initial AOF after a full sync), and
   * SIGKILL when it is still alive after `timeoutMs` (default 5000). Resolves
   * with the exit.
   */
  async stop(
    { graceful = true, save = false, timeoutMs = 5000 }: {
      graceful?: boolean;
      save?: boolean;
      timeoutMs?: number;
    } = {},
  ): Promise<RedisExit> {
    if (this.#exit) return this.#exit;
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    this.exited.then(() => ended = true);
    if (graceful) {
      while (!ended && Date.now() < deadline) {
        const left = Math.max(1, deadline - Date.now());
        try {
          await this.client.shutdown(save, left);
          // The connection closed: the server is on its way out.
          break;
        } catch (error) {
          if ((error as Error).name !== "ReplyError") break;
          await Promise.race([this.exited, new Promise((r) => setTimeout(r, 100))]);
        }
      }
    } else {
      this.kill("SIGKILL");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const left = Math.max(0, deadline - Date.now());
    const timedOut = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left));
    try {
      if ((await Promise.race([this.exited, timedOut])) === "timeout") this.kill("SIGKILL");
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
