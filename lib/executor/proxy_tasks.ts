/**
 * Proxy tasks of MrRedisExecutor: each one a {@linkcode RedisProxy} (the
 * engine of `lib/proxy`) listening on the port of its task, in the
 * executor's own process, so agents need nothing more than for redis tasks.
 * The engine is loaded on the first proxy launch, never at start-up.
 *
 * The proxies run on a thread of their own ({@linkcode ProxyThread}),
 * started with the first proxy task and stopped with the executor: the
 * executor's thread blocks in each spawn of a redis-server, and their
 * clients must not wait for it. Where the thread cannot be started, the
 * proxies run on the executor's thread, and the log says why.
 *
 * Task life: LAUNCH → listening → TASK_RUNNING (data
 * `{host, port}`) → exactly one terminal update: TASK_KILLED (KILL,
 * SHUTDOWN) or TASK_FAILED (bad spec, port not free, listener failed).
 *
 * @module
 */
import type { RedisTaskStatusData } from "../executor_messages.ts";
import type { TaskInfo } from "../mesos/types.ts";
import { decodeProxySpec, type ProxyMasterSpec, type ProxyTaskSpec } from "../proxy/task_spec.ts";
import type { ProxyHandle, ProxyThread } from "../proxy/proxy_thread.ts";
import type { TaskStatusUpdate } from "./redis_executor.ts";

/** What proxy tasks need from the executor that hosts them. */
export interface ProxyTasksOptions {
  /** Sends a status update (the executor's reliable path). */
  send(status: TaskStatusUpdate): void;
  /** The host put in TASK_RUNNING data. */
  host(): string;
  /** The address proxies listen on. */
  bind: string;
  /** Called when a proxy task ended (the executor may become idle). */
  ended(): void;
  log(line: string): void;
  /**
   * The module the proxy thread starts from (one that calls
   * `serveProxyThread`); `null` runs the proxies on the calling thread.
   * Default: `lib/proxy/_thread_worker.ts` beside this module.
   */
  threadModule?: URL | null;
}

interface ProxyTask {
  id: string;
  spec: ProxyTaskSpec;
  proxy?: ProxyHandle;
  /** KILL or SHUTDOWN asked for it: its end is TASK_KILLED. */
  killRequested: boolean;
  /** Being stopped (its proxy closing). */
  stopping: boolean;
  /** Its terminal update is sent (or the executor is abandoned). */
  done: boolean;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The proxy tasks of one executor. */
export class ProxyTasks {
  readonly #opts: ProxyTasksOptions;
  readonly #tasks = new Map<string, ProxyTask>();
  /** The executor was abandoned: no more updates. */
  #silent = false;
  /** The proxy thread, once asked for; undefined in it: the proxies run here. */
  #thread: Promise<ProxyThread | undefined> | undefined;
  /** {@linkcode ProxyTasks.closeAll} was called: the thread goes with the last task. */
  #closingAll = false;
  /** Why the proxy thread cannot be had (then proxies run on this thread). */
  #threadUnavailable: string | undefined;

  /** Hosts no task until {@linkcode ProxyTasks.launch}. */
  constructor(options: ProxyTasksOptions) {
    this.#opts = options;
  }

  /** Proxy tasks not yet ended. */
  get size(): number {
    return this.#tasks.size;
  }

  /** Ids of the proxy tasks not yet ended. */
  get taskIds(): string[] {
    return [...this.#tasks.keys()];
  }

  /** Whether `taskId` is a proxy task of this executor. */
  has(taskId: string): boolean {
    return this.#tasks.has(taskId);
  }

  /** Starts the proxy of a LAUNCH whose `data` is a proxy spec. */
  async launch(info: TaskInfo): Promise<void> {
    const id = info.task_id.value;
    if (this.#tasks.has(id)) {
      this.#opts.log(`Task ${id}: LAUNCH for a proxy already running here; ignored`);
      return;
    }
    let spec: ProxyTaskSpec;
    try {
      spec = decodeProxySpec(info.data);
    } catch (error) {
      this.#opts.send({
        task_id: info.task_id,
        state: "TASK_FAILED",
        reason: "REASON_TASK_INVALID",
        message: `Cannot launch task "${id}": ${errorText(error)}`,
        data: this.#data(undefined, { cause: "invalid" }),
      });
      return;
    }
    const task: ProxyTask = { id, spec, killRequested: false, stopping: false, done: false };
    this.#tasks.set(id, task);
    // No TASK_STARTING (optional in Mesos): a proxy listens within
    // milliseconds, and each update costs an acknowledgement through agent,
    // master and scheduler (a create of 70 singles launches 70 proxies).
    try {
      const options = {
        hostname: this.#opts.bind,
        port: spec.port,
        name: spec.instance,
        ...(spec.waitMs !== undefined ? { waitMs: spec.waitMs } : {}),
        ...(spec.password !== undefined ? { password: spec.password } : {}),
      };
      const thread = await this.#proxyThread();
      if (thread) {
        task.proxy = await thread.open(id, options);
      } else {
        // The engine is loaded by the first proxy task only.
        const { RedisProxy } = await import("../proxy/proxy.ts");
        task.proxy = new RedisProxy({
          ...options,
          log: (line) => this.#opts.log(`Task ${id}: ${line}`),
        });
      }
    } catch (error) {
      this.#finish(task, "TASK_FAILED", `Cannot start the proxy: ${errorText(error)}`, {
        cause: "start_failed",
      });
      return;
    }
    if (task.killRequested) {
      await this.#stop(task, "TASK_KILLED", "Killed while starting", "killed", !this.#silent);
      return;
    }
    if (spec.master) task.proxy.setMaster(spec.master);
    this.#opts.log(
      `Task ${id}: proxy of ${spec.instance} listening on port ${spec.port}, master ${
        spec.master
          ? `${spec.master.host}:${spec.master.port} (epoch ${spec.master.epoch})`
          : "none yet"
      }`,
    );
    this.#opts.send({ task_id: info.task_id, state: "TASK_RUNNING", data: this.#data(task) });
    const proxy = task.proxy;
    proxy.serving.then(() => {
      if (!proxy.closed && !task.done) {
        const message = proxy.stopReason === undefined
          ? "The proxy stopped accepting connections"
          : `The proxy stopped accepting connections: ${proxy.stopReason}`;
        this.#finish(task, "TASK_FAILED", message, { cause: "exited" });
        proxy.close().catch(() => {});
      }
    });
  }

  /**
   * The running proxy thread, started on first use (or again after it
   * failed); undefined when proxies run on this thread.
   */
  async #proxyThread(): Promise<ProxyThread | undefined> {
    const module = this.#opts.threadModule === undefined
      ? new URL("../proxy/_thread_worker.ts", import.meta.url)
      : this.#opts.threadModule;
    if (module === null || this.#threadUnavailable !== undefined) return undefined;
    const pending = this.#thread;
    const current = pending && await pending;
    if (current && current.failure === undefined) return current;
    // Failed: a new one (unless another launch has started it meanwhile).
    if (current && this.#thread === pending) this.#thread = undefined;
    this.#thread ??= import("../proxy/proxy_thread.ts").then(({ ProxyThread }) =>
      ProxyThread.start(module, {
        log: (id, line) => this.#opts.log(`Task ${id}: ${line}`),
        failed: (reason) => this.#opts.log(`${reason}; its proxy tasks fail`),
      })
    ).then((thread) => {
      this.#opts.log("Proxies run on a thread of their own");
      return thread;
    }, (error) => {
      this.#threadUnavailable = errorText(error).replace(/\.$/, "");
      this.#opts.log(`${this.#threadUnavailable}; proxies run on the executor's thread`);
      return undefined;
    });
    return await this.#thread;
  }

  /**
   * Stops the proxy thread once every proxy task has ended after
   * {@linkcode ProxyTasks.closeAll}. It stays up between proxy tasks
   * otherwise: a thread costs about 35 ms of CPU to start.
   */
  #releaseThread(): void {
    if (!this.#closingAll || this.#tasks.size > 0 || !this.#thread) return;
    const thread = this.#thread;
    this.#thread = undefined;
    thread.then((t) => t?.terminate());
  }

  /** Stops a proxy task on KILL. */
  async kill(taskId: string): Promise<void> {
    const task = this.#tasks.get(taskId);
    if (!task) return;
    task.killRequested = true;
    if (!task.proxy) return; // its launch stops it once the proxy exists
    await this.#stop(task, "TASK_KILLED", "Killed by the scheduler", "killed");
  }

  /**
   * Tells the proxy of `taskId` its master; returns `undefined` when taken
   * (or ignored as older than the one it follows), else why not.
   */
  setMaster(taskId: string, master: ProxyMasterSpec): string | undefined {
    const task = this.#tasks.get(taskId);
    if (!task?.proxy || task.done) {
      return `Cannot tell proxy task "${taskId}" its master: it does not run here`;
    }
    const taken = task.proxy.setMaster(master);
    this.#opts.log(
      `Task ${taskId}: master ${master.host}:${master.port} (epoch ${master.epoch})${
        taken ? "" : " ignored: older than the one followed"
      }`,
    );
    return undefined;
  }

  /** Stops every proxy task: with TASK_KILLED each when `report`, silently otherwise. */
  async closeAll(report: boolean): Promise<void> {
    this.#silent = !report;
    this.#closingAll = true;
    await Promise.allSettled([...this.#tasks.values()].map((task) => {
      task.killRequested = true;
      // One still starting stops once its proxy exists (see launch).
      if (!task.proxy) return undefined;
      return this.#stop(task, "TASK_KILLED", "Executor shut down", "killed", report);
    }));
    this.#releaseThread();
  }

  async #stop(
    task: ProxyTask,
    state: "TASK_KILLED" | "TASK_FAILED",
    message: string,
    cause: RedisTaskStatusData["cause"],
    report = true,
  ): Promise<void> {
    if (task.stopping) return;
    task.stopping = true;
    await task.proxy?.close().catch(() => {});
    if (report) {
      this.#finish(task, state, message, { cause });
    } else if (!task.done) {
      task.done = true;
      this.#tasks.delete(task.id);
      this.#releaseThread();
      this.#opts.ended();
    }
  }

  #finish(
    task: ProxyTask,
    state: "TASK_KILLED" | "TASK_FAILED",
    message: string,
    extra: RedisTaskStatusData,
  ): void {
    if (task.done) return;
    task.done = true;
    this.#tasks.delete(task.id);
    this.#releaseThread();
    this.#opts.send({
      task_id: { value: task.id },
      state,
      message,
      ...(state === "TASK_FAILED" && extra.cause === "start_failed"
        ? { reason: "REASON_CONTAINER_LAUNCH_FAILED" as const }
        : {}),
      data: this.#data(task, extra),
    });
    this.#opts.ended();
  }

  #data(task: ProxyTask | undefined, extra: RedisTaskStatusData = {}): Uint8Array {
    const data: RedisTaskStatusData = {
      host: this.#opts.host(),
      ...(task ? { port: task.spec.port } : {}),
      ...extra,
    };
    return new TextEncoder().encode(JSON.stringify(data));
  }
}
