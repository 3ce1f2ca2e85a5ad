/**
 * One agent of the local cluster: its resources, its executor HTTP API
 * (`/api/v1/executor`, also `/slave(1)/api/v1/executor`), the executor
 * processes it runs in their sandboxes, and the reliable delivery of their
 * status updates (protocol reference §2 and §6 items 19–24). It can also
 * restart like a Mesos agent with checkpointing: it stops serving without
 * touching its executors ({@link Agent.pause}), then serves again on the
 * same port with the same id and state ({@link Agent.resume}) and waits for
 * its executors to re-subscribe.
 *
 * @module
 */

import { join } from "node:path";
import type { ContentType } from "../codec.ts";
import {
  EventStream,
  LOCAL_HTTP_LIMITS,
  negotiateStream,
  parseCall,
  textResponse,
} from "./http.ts";
import {
  type LocalRequest,
  type LocalResponse,
  type LocalServer,
  serveLocal,
} from "./http_server.ts";
import { type Downloader, downloadTo, FetcherCache, FetchError, fetchUris } from "./fetcher.ts";
import { bearerToken, unauthorized } from "./auth.ts";
import {
  type ExecutorInfo,
  type FrameworkInfo,
  type Id,
  isTerminal,
  newUuidBytes,
  nowSeconds,
  type Range,
  type TaskInfo,
  type TaskStatus,
} from "./messages.ts";
import {
  emptyPool,
  type Pool,
  poolFromResources,
  resourcesFromPool,
  sumPools,
} from "./resources.ts";
import { agentTotal } from "./agent_resources.ts";
import { StatusUpdateManager } from "./status_updates.ts";
import { scheduleSandboxRemoval } from "./sandbox_gc.ts";
import { type AgentHost, hostCommand } from "./host_network.ts";

/** What an agent needs from its master. */
export interface AgentMaster {
  /** Delivers one reliable update to the scheduler (dropped when it is not connected). */
  forwardStatusUpdate(agent: Agent, frameworkId: string, status: TaskStatus): void;
  /** The agent now knows `state` as the task's latest state (terminal frees resources). */
  taskStateChanged(agent: Agent, frameworkId: string, taskId: string, state: string): void;
  /** An executor sent a MESSAGE for its scheduler. */
  executorMessage(agent: Agent, frameworkId: string, executorId: string, data: Uint8Array): void;
  /** An executor is gone; `status` is its raw wait status when it ran as a process. */
  executorTerminated(agent: Agent, frameworkId: string, executorId: string, status?: number): void;
}

/** Settings of one agent (filled in by the cluster). */
export interface AgentOptions {
  /** Position in the cluster (0-based). */
  index: number;
  /** The AgentID. */
  id: string;
  /** Hostname (and IP) the agent reports. */
  hostname: string;
  /** CPUs offered. */
  cpus: number;
  /** Memory offered, MB. */
  mem: number;
  /** The ports range offered. */
  ports: Range;
  /**
   * The part of `cpus`, `mem` and `ports` statically reserved for roles
   * (pool keys `name(role)`, see `agent_resources.ts`); absent: none.
   */
  reserved?: Pool;
  /** Root of the cluster's sandboxes. */
  workDir: string;
  /** Executor registration timeout (Mesos: 1 min). */
  executorRegistrationTimeoutMs: number;
  /**
   * How long a restarted agent waits for a live executor to re-subscribe
   * before destroying it (Mesos `--executor_reregistration_timeout`, 2 s).
   */
  executorReregistrationTimeoutMs: number;
  /** MESOS_RECOVERY_TIMEOUT given to checkpointing executors (Mesos: 15 min). */
  recoveryTimeoutMs: number;
  /** MESOS_SUBSCRIPTION_BACKOFF_MAX given to checkpointing executors (Mesos: 2 s). */
  subscriptionBackoffMaxMs: number;
  /** Default executor shutdown grace period (Mesos: 5 s). */
  executorShutdownGracePeriodMs: number;
  /** First status update retry interval (Mesos: 10 s). */
  statusUpdateRetryMs: number;
  /** Largest status update retry interval (Mesos: 10 min). */
  statusUpdateMaxRetryMs: number;
  /** Executors get a token each and must send it (Mesos `--authenticate_http_executors`). */
  authenticateExecutors?: boolean;
  /** How long the sandbox of an ended executor is kept (Mesos `--gc_delay`: 1 week). */
  gcDelayMs: number;
  /** Address the executor API listens on (default 127.0.0.1). */
  listenAddress?: string;
  /**
   * Run executors on a host of their own (a multi-host cluster): its network
   * namespace and, but for the command executor, its own root.
   */
  host?: AgentHost;
  /** The command line of the command executor (run without a root of its own). */
  commandExecutor?: readonly string[];
  /** Log sink. */
  log: (line: string) => void;
}

interface AgentTask {
  info: TaskInfo;
  state: string;
  launched: boolean;
}

type ExecutorState = "fetching" | "registering" | "running" | "terminating" | "terminated";

interface Executor {
  frameworkId: string;
  executorId: string;
  info: ExecutorInfo;
  frameworkInfo: FrameworkInfo;
  sandbox: string;
  containerId: string;
  state: ExecutorState;
  subscribed: boolean;
  pool: Pool;
  tasks: Map<string, AgentTask>;
  child?: Deno.ChildProcess;
  stream?: EventStream;
  /** Registration or (after a restart) re-registration timer. */
  registrationTimer?: ReturnType<typeof setTimeout>;
  graceTimer?: ReturnType<typeof setTimeout>;
  exited: Promise<void>;
  /** Subscribed before the agent restarted and not re-subscribed since. */
  recovering: boolean;
  /** Set when the executor died (or could not start) while the agent was down. */
  lostWhileDown?: { message: string; status?: number };
  /** MESOS_EXECUTOR_AUTHENTICATION_TOKEN of this executor, when executors authenticate. */
  token?: string;
}

interface ExecutorCall {
  executor_id: Id;
  framework_id: Id;
  type?: string;
  subscribe?: {
    unacknowledged_tasks?: TaskInfo[];
    unacknowledged_updates?: { status: TaskStatus }[];
  };
  update?: { status: TaskStatus };
  message?: { data: Uint8Array };
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** The raw POSIX wait status of an exited process (what FAILURE.status carries). */
export function waitStatus(status: Deno.CommandStatus): number {
  if (status.signal) return SIGNALS[status.signal] ?? 9;
  return (status.code & 0xff) << 8;
}

/**
 * A duration in stout syntax in the largest unit that holds it whole
 * (`15mins`, `5secs`, `1500ms`), as Mesos writes it into env vars.
 */
export function stoutDuration(ms: number): string {
  for (const [unit, size] of [["hrs", 3_600_000], ["mins", 60_000], ["secs", 1000]] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

let setsidPath: string | null | undefined;
/** The `setsid` program, when the system has one (cached). */
export function findSetsid(): string | null {
  if (setsidPath !== undefined) return setsidPath;
  setsidPath = null;
  for (const p of ["/usr/bin/setsid", "/bin/setsid"]) {
    try {
      if (Deno.statSync(p).isFile) {
        setsidPath = p;
        break;
      }
    } catch {
      // not there
    }
  }
  return setsidPath;
}

/** Sends `signal` to the process group of `pid` (and to `pid` itself as a fallback). */
export function killTree(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** One agent: executor API server, executor processes, status update manager. */
export class Agent {
  /** Settings. */
  readonly options: AgentOptions;
  /** Total resources. */
  readonly total: Pool;
  #master: AgentMaster;
  #server?: LocalServer;
  #port = 0;
  #running = false;
  /** Stopped serving by {@link pause}, state kept. */
  #paused = false;
  #executors = new Map<string, Executor>();
  #updates: StatusUpdateManager;
  /** The fetcher cache of this agent (as Mesos' `--fetcher_cache_dir` of one host). */
  readonly fetcherCache: FetcherCache;
  /** Pending sandbox removals (cancelled when the agent stops). */
  #gc = new Set<() => void>();

  /** Creates an agent (not yet serving). */
  constructor(options: AgentOptions, master: AgentMaster) {
    this.options = options;
    this.#master = master;
    this.fetcherCache = new FetcherCache(
      join(options.workDir, "fetcher-cache", `${options.index}`),
      undefined,
      this.#downloader(),
    );
    this.total = agentTotal(options, options.reserved);
    this.#updates = new StatusUpdateManager({
      initialIntervalMs: options.statusUpdateRetryMs,
      maxIntervalMs: options.statusUpdateMaxRetryMs,
      forward: (fid, status) => {
        if (this.#running) this.#master.forwardStatusUpdate(this, fid, status);
      },
    });
  }

  /**
   * How this agent downloads: in this process, or — on a host of its own —
   * from that host's network namespace (the cluster's program run there with
   * `--fetch URL FILE`), so fetches travel over the host's link.
   */
  #downloader(): Downloader | undefined {
    const host = this.options.host;
    const program = this.options.commandExecutor;
    if (!host || !program || program.at(-1) !== "--command-executor") return undefined;
    return async (value, target) => {
      if (!/^https?:\/\//i.test(value)) return await downloadTo(value, target);
      const out = await new Deno.Command("ip", {
        args: ["netns", "exec", host.namespace, ...program.slice(0, -1), "--fetch", value, target],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        const why = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
        throw new FetchError(why || `Cannot fetch "${value}": exit code ${out.code}`);
      }
    };
  }

  /** The AgentID. */
  get id(): string {
    return this.options.id;
  }

  /** The executor API port (0 before start). */
  get port(): number {
    return this.#port;
  }

  /** True while the agent serves. */
  get running(): boolean {
    return this.#running;
  }

  /** `ip:port` where executors reach this agent, as in MESOS_AGENT_ENDPOINT. */
  get endpoint(): string {
    return `${this.options.listenAddress ?? this.options.hostname}:${this.#port}`;
  }

  /** `mesos.v1.AgentInfo` of this agent. */
  agentInfo(): Record<string, unknown> {
    return {
      hostname: this.options.hostname,
      port: this.#port,
      resources: resourcesFromPool(this.total),
      id: { value: this.id },
    };
  }

  /** True while stopped by {@link pause} (state kept, not serving). */
  get paused(): boolean {
    return this.#paused;
  }

  /** Starts the executor API server. */
  start(): Promise<void> {
    return settled(() => this.#listen(0));
  }

  /** Serves the executor API on `port` (0 = any free port). */
  #listen(port: number): void {
    this.#server = serveLocal({
      hostname: this.options.listenAddress ?? "127.0.0.1",
      port,
      ...LOCAL_HTTP_LIMITS,
      onError: (error) => {
        this.options.log(`agent ${this.id}: internal error: ${(error as Error)?.stack ?? error}`);
        return textResponse(500, "Internal server error");
      },
    }, (request) => this.#handle(request));
    this.#port = this.#server.addr.port;
    this.#running = true;
  }

  /**
   * Stops the agent like a lost host: every executor process tree is
   * SIGKILLed, nothing more is reported to the master, all state is dropped.
   */
  async stop(): Promise<void> {
    if (!this.#running && !this.#server && !this.#paused) return;
    this.#running = false;
    this.#paused = false;
    this.#updates.clear();
    const exits: Promise<void>[] = [];
    for (const ex of this.#executors.values()) {
      clearTimeout(ex.registrationTimer);
      clearTimeout(ex.graceTimer);
      ex.stream?.break();
      if (ex.child) killTree(ex.child.pid, "SIGKILL");
      exits.push(ex.exited);
    }
    await Promise.all(exits);
    this.#executors.clear();
    for (const cancel of this.#gc) cancel();
    this.#gc.clear();
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  /**
   * Stops the agent after shutting down every executor (SHUTDOWN, then
   * SIGKILL of its tree after its grace period) and waiting for them to
   * exit; executors keep their sandboxes.
   */
  async drain(): Promise<void> {
    if (this.#running) {
      const live = [...this.#executors.values()].filter((ex) => ex.state !== "terminated");
      for (const ex of live) this.shutdownExecutor(ex.frameworkId, ex.executorId);
      await Promise.all(live.map((ex) => ex.exited));
    }
    await this.stop();
  }

  /**
   * Stops the agent process, as for a restart with checkpointing: the
   * executor API stops serving (executor event streams end) and nothing is
   * reported or retried, but executor processes keep running and every
   * executor, task and pending update is kept. Executors that die meanwhile
   * are reported by {@link resume}.
   */
  async pause(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#paused = true;
    this.#updates.pause();
    for (const ex of this.#executors.values()) {
      clearTimeout(ex.registrationTimer);
      ex.registrationTimer = undefined;
      if (ex.subscribed) ex.recovering = true;
      ex.subscribed = false;
      ex.stream?.break();
      ex.stream = undefined;
    }
    await this.#server?.shutdown();
    this.#server = undefined;
    this.options.log(`agent ${this.id}: stopped for a restart`);
  }

  /**
   * Serves again on the same port after {@link pause}, with the same id and
   * state (Mesos agent recovery from its checkpoints): an executor that died
   * meanwhile gets its live tasks failed (TASK_FAILED,
   * REASON_EXECUTOR_TERMINATED) and FAILURE sent; a live one that was
   * subscribed must re-subscribe within `executorReregistrationTimeoutMs`,
   * else it is destroyed and its tasks become TASK_GONE (partition-aware) or
   * TASK_LOST with REASON_EXECUTOR_REREGISTRATION_TIMEOUT; one that never
   * subscribed gets a fresh registration timeout. Pending status updates
   * are not resent until {@link resendAllUpdates}, so the master can first
   * re-admit the agent.
   */
  resume(): Promise<void> {
    return settled(() => this.#resume());
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#listen(this.#port);
    this.#paused = false;
    this.options.log(`agent ${this.id}: serving again at ${this.endpoint}`);
    for (const ex of [...this.#executors.values()]) {
      if (ex.state === "terminated") continue;
      if (ex.lostWhileDown) {
        const { message, status } = ex.lostWhileDown;
        this.#terminateExecutor(ex, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", message, status);
      } else if (ex.recovering) {
        ex.registrationTimer = setTimeout(
          () => this.#reregistrationTimedOut(ex),
          this.options.executorReregistrationTimeoutMs,
        );
      } else if (ex.state === "registering") {
        ex.registrationTimer = setTimeout(
          () => this.#registrationTimedOut(ex),
          this.options.executorRegistrationTimeoutMs,
        );
      }
    }
  }

  /** Resends every pending status update at once (after a restart). */
  resendAllUpdates(): void {
    if (this.#running) this.#updates.resendAll();
  }

  /**
   * The latest state this agent knows for a task (a pending update's, else
   * the task's), or `undefined` when it does not know the task.
   */
  taskState(frameworkId: string, taskId: string): string | undefined {
    return this.#updates.latestState(frameworkId, taskId) ??
      this.#findTask(frameworkId, taskId)?.task.state;
  }

  /** Resources held by live executors. */
  executorsPool(): Pool {
    return sumPools(this.executorPools());
  }

  /** The resources of each live executor. */
  *executorPools(): Iterable<Pool> {
    for (const ex of this.#executors.values()) {
      if (ex.state !== "terminated") yield ex.pool;
    }
  }

  /** Ids of the framework's live executors here (Offer.executor_ids). */
  executorIds(frameworkId: string): string[] {
    return [...this.#executors.values()]
      .filter((ex) => ex.frameworkId === frameworkId && ex.state !== "terminated")
      .map((ex) => ex.executorId);
  }

  /** The ExecutorInfo of a live executor. */
  executorInfo(frameworkId: string, executorId: string): ExecutorInfo | undefined {
    const ex = this.#executors.get(key(frameworkId, executorId));
    return ex && ex.state !== "terminated" ? ex.info : undefined;
  }

  /** Sandbox and pid of a live executor (for tests and operators). */
  executorProcess(
    frameworkId: string,
    executorId: string,
  ): { sandbox: string; pid?: number; state: string; subscribed: boolean } | undefined {
    const ex = this.#executors.get(key(frameworkId, executorId));
    return ex
      ? { sandbox: ex.sandbox, pid: ex.child?.pid, state: ex.state, subscribed: ex.subscribed }
      : undefined;
  }

  /**
   * Runs a task: starts its executor when none with that id is live here
   * (fetch URIs, spawn, wait for SUBSCRIBE), queues it, and delivers it as
   * a LAUNCH event once the executor is subscribed.
   */
  launchTask(
    frameworkInfo: FrameworkInfo,
    task: TaskInfo,
    executor: ExecutorInfo | undefined = task.executor,
  ): void {
    if (!this.#running || !executor) return;
    const fid = frameworkInfo.id!.value;
    const info = executor;
    const k = key(fid, info.executor_id.value);
    let ex = this.#executors.get(k);
    if (!ex || ex.state === "terminated") {
      ex = this.#createExecutor(frameworkInfo, info);
      this.#executors.set(k, ex);
      this.#startExecutor(ex);
    }
    if (ex.state === "terminating") {
      this.#agentUpdate(
        ex,
        task.task_id.value,
        "TASK_FAILED",
        "REASON_EXECUTOR_TERMINATED",
        "Executor is shutting down",
      );
      return;
    }
    ex.tasks.set(task.task_id.value, { info: task, state: "TASK_STAGING", launched: false });
    if (ex.subscribed && ex.state === "running") this.#deliverQueued(ex);
  }

  #createExecutor(frameworkInfo: FrameworkInfo, info: ExecutorInfo): Executor {
    const fid = frameworkInfo.id!.value;
    const containerId = crypto.randomUUID();
    const sandbox = join(
      this.options.workDir,
      "agents",
      this.id,
      "frameworks",
      fid,
      "executors",
      info.executor_id.value,
      "runs",
      containerId,
    );
    const pool = poolFromResources(info.resources ?? []);
    return {
      frameworkId: fid,
      executorId: info.executor_id.value,
      info,
      frameworkInfo,
      sandbox,
      containerId,
      state: "fetching",
      subscribed: false,
      pool: typeof pool === "string" ? emptyPool() : pool,
      tasks: new Map(),
      exited: Promise.resolve(),
      recovering: false,
    };
  }

  #startExecutor(ex: Executor): void {
    let resolveExit!: () => void;
    ex.exited = new Promise((r) => (resolveExit = r));
    (async () => {
      try {
        await Deno.mkdir(ex.sandbox, { recursive: true });
        await fetchUris(ex.info.command?.uris ?? [], ex.sandbox, {
          cache: this.fetcherCache,
          download: this.#downloader(),
          user: ex.info.command?.user ?? ex.frameworkInfo.user ?? "",
        });
      } catch (error) {
        resolveExit();
        if (ex.state === "terminated") return;
        if (this.#paused) {
          ex.lostWhileDown = { message: `Failed to fetch URIs: ${(error as Error).message}` };
          return;
        }
        if (!this.#running) return;
        const message = `Failed to fetch URIs for executor "${ex.executorId}": ${
          (error as Error).message
        }`;
        this.options.log(`agent ${this.id}: ${message}`);
        this.#terminateExecutor(ex, "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", message);
        return;
      }
      if (!this.#running || ex.state !== "fetching") {
        resolveExit();
        if (this.#paused && ex.state === "fetching") {
          ex.lostWhileDown = { message: "The agent restarted before the executor was launched" };
        }
        return;
      }
      try {
        ex.child = this.#spawn(ex);
      } catch (error) {
        resolveExit();
        const message = `Failed to launch executor "${ex.executorId}": ${(error as Error).message}`;
        this.options.log(`agent ${this.id}: ${message}`);
        this.#terminateExecutor(ex, "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", message);
        return;
      }
      ex.state = "registering";
      ex.registrationTimer = setTimeout(
        () => this.#registrationTimedOut(ex),
        this.options.executorRegistrationTimeoutMs,
      );
      const child = ex.child;
      ex.child.status.then((status) => {
        // Like a Mesos container: when the executor dies, everything it
        // started (its process group: the redis-servers) dies with it.
        killTree(child.pid, "SIGKILL");
        resolveExit();
        if (this.#paused && ex.state !== "terminated") {
          ex.lostWhileDown = {
            message: "Executor terminated while the agent was down",
            status: waitStatus(status),
          };
          return;
        }
        if (!this.#running) return;
        this.options.log(
          `agent ${this.id}: executor "${ex.executorId}" exited (code ${status.code}${
            status.signal ? `, ${status.signal}` : ""
          })`,
        );
        this.#terminateExecutor(
          ex,
          "TASK_FAILED",
          "REASON_EXECUTOR_TERMINATED",
          "Executor terminated",
          waitStatus(status),
        );
      });
    })();
  }

  #spawn(ex: Executor): Deno.ChildProcess {
    const command = ex.info.command ?? {};
    const argv = command.shell === false
      ? [command.value ?? "", ...(command.arguments ?? []).slice(1)]
      : ["/bin/sh", "-c", command.value ?? ""];
    if (argv[0] === "") throw new Error("CommandInfo has no 'value'");
    const checkpoint = ex.frameworkInfo.checkpoint === true;
    const graceMs = ex.info.shutdown_grace_period
      ? Math.floor(ex.info.shutdown_grace_period.nanoseconds / 1e6)
      : this.options.executorShutdownGracePeriodMs;
    const env: Record<string, string> = {};
    // On a host of its own, the executor gets that host's PATH, not this process's.
    for (const name of this.options.host ? ["HOME"] : ["PATH", "HOME"]) {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    }
    env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    Object.assign(env, {
      MESOS_FRAMEWORK_ID: ex.frameworkId,
      MESOS_EXECUTOR_ID: ex.executorId,
      MESOS_AGENT_ENDPOINT: this.endpoint,
      MESOS_SLAVE_ID: this.id,
      MESOS_SLAVE_PID: `slave(1)@${this.endpoint}`,
      MESOS_DIRECTORY: ex.sandbox,
      MESOS_SANDBOX: ex.sandbox,
      MESOS_CHECKPOINT: checkpoint ? "1" : "0",
      MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: stoutDuration(graceMs),
      MESOS_HTTP_COMMAND_EXECUTOR: "0",
    });
    if (this.options.authenticateExecutors) {
      ex.token ??= [...crypto.getRandomValues(new Uint8Array(24))]
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      env.MESOS_EXECUTOR_AUTHENTICATION_TOKEN = ex.token;
    }
    if (checkpoint) {
      env.MESOS_RECOVERY_TIMEOUT = stoutDuration(this.options.recoveryTimeoutMs);
      env.MESOS_SUBSCRIPTION_BACKOFF_MAX = stoutDuration(this.options.subscriptionBackoffMaxMs);
    }
    for (const v of command.environment?.variables ?? []) {
      if (v.type !== "SECRET") env[v.name] = v.value ?? "";
    }
    // The sandbox's stdout and stderr exist from the launch on, as in Mesos
    // (the shell below only appends to them).
    for (const name of ["stdout", "stderr"]) {
      Deno.writeFileSync(`${ex.sandbox}/${name}`, new Uint8Array(), { append: true });
    }
    // Redirect output into the sandbox, then exec the executor in its own session.
    const redirect = 'exec >>stdout 2>>stderr </dev/null; exec "$@"';
    const setsid = findSetsid();
    let spawn = {
      command: setsid ?? "/bin/sh",
      args: [...(setsid ? ["/bin/sh"] : []), "-c", redirect, "sh", ...argv],
    };
    if (this.options.host) {
      const commandExecutor = this.options.commandExecutor;
      const isCommandExecutor = commandExecutor !== undefined && command.shell === false &&
        command.value === commandExecutor[0];
      spawn = hostCommand(
        this.options.host,
        ex.sandbox,
        [spawn.command, ...spawn.args],
        !isCommandExecutor,
      );
    }
    return new Deno.Command(spawn.command, {
      args: spawn.args,
      cwd: ex.sandbox,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  #registrationTimedOut(ex: Executor): void {
    if (ex.subscribed || ex.state !== "registering") return;
    this.options.log(`agent ${this.id}: executor "${ex.executorId}" did not subscribe in time`);
    for (const taskId of ex.tasks.keys()) {
      this.#agentUpdate(
        ex,
        taskId,
        "TASK_FAILED",
        "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        "Executor did not subscribe within the registration timeout",
      );
    }
    ex.tasks.clear();
    ex.state = "terminating";
    if (ex.child) killTree(ex.child.pid, "SIGKILL");
  }

  #reregistrationTimedOut(ex: Executor): void {
    if (ex.subscribed || !ex.recovering || ex.state === "terminated") return;
    ex.recovering = false;
    const ms = this.options.executorReregistrationTimeoutMs;
    this.options.log(`agent ${this.id}: executor "${ex.executorId}" did not re-subscribe in time`);
    const state = hasPartitionAware(ex.frameworkInfo) ? "TASK_GONE" : "TASK_LOST";
    for (const taskId of ex.tasks.keys()) {
      this.#agentUpdate(
        ex,
        taskId,
        state,
        "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
        `Executor did not re-subscribe within ${ms} ms after the agent restarted`,
      );
    }
    ex.tasks.clear();
    ex.state = "terminating";
    if (ex.child) killTree(ex.child.pid, "SIGKILL");
  }

  /** Marks the executor gone, fails its live tasks and tells the master. */
  #terminateExecutor(
    ex: Executor,
    state: string,
    reason: string,
    message: string,
    status?: number,
  ): void {
    if (ex.state === "terminated") return;
    ex.state = "terminated";
    clearTimeout(ex.registrationTimer);
    clearTimeout(ex.graceTimer);
    ex.stream?.close();
    ex.stream = undefined;
    for (const taskId of ex.tasks.keys()) {
      this.#agentUpdate(ex, taskId, state, reason, message);
    }
    ex.tasks.clear();
    if (this.#executors.get(key(ex.frameworkId, ex.executorId)) === ex) {
      this.#executors.delete(key(ex.frameworkId, ex.executorId));
    }
    const cancel = scheduleSandboxRemoval(ex.sandbox, this.options.gcDelayMs);
    this.#gc.add(cancel);
    this.#master.executorTerminated(this, ex.frameworkId, ex.executorId, status);
  }

  /** An update generated by the agent itself (source AGENT, with uuid). */
  #agentUpdate(
    ex: Executor,
    taskId: string,
    state: string,
    reason: string,
    message: string,
  ): void {
    const status: TaskStatus = {
      task_id: { value: taskId },
      state,
      message,
      source: "SOURCE_AGENT",
      reason,
      agent_id: { value: this.id },
      executor_id: { value: ex.executorId },
      timestamp: nowSeconds(),
      uuid: newUuidBytes(),
    };
    this.#store(ex.frameworkId, status);
  }

  #store(frameworkId: string, status: TaskStatus): ReturnType<StatusUpdateManager["add"]> {
    const result = this.#updates.add(frameworkId, status);
    if (result === "added") {
      this.#master.taskStateChanged(this, frameworkId, status.task_id.value, status.state);
    }
    return result;
  }

  #deliverQueued(ex: Executor): void {
    for (const task of ex.tasks.values()) {
      if (task.launched) continue;
      task.launched = true;
      ex.stream?.send({ type: "LAUNCH", launch: { task: task.info } });
    }
  }

  #findTask(frameworkId: string, taskId: string): { ex: Executor; task: AgentTask } | undefined {
    for (const ex of this.#executors.values()) {
      if (ex.frameworkId !== frameworkId) continue;
      const task = ex.tasks.get(taskId);
      if (task) return { ex, task };
    }
    return undefined;
  }

  /** KILL: TASK_KILLED at once for a queued task, else a KILL event to the executor. */
  killTask(frameworkId: string, taskId: string, killPolicy?: unknown): void {
    if (!this.#running) return;
    const found = this.#findTask(frameworkId, taskId);
    if (!found) return;
    const { ex, task } = found;
    if (!task.launched) {
      ex.tasks.delete(taskId);
      this.#agentUpdate(
        ex,
        taskId,
        "TASK_KILLED",
        "REASON_TASK_KILLED_DURING_LAUNCH",
        "Killed before delivery to the executor",
      );
      return;
    }
    ex.stream?.send({
      type: "KILL",
      kill: { task_id: { value: taskId }, ...(killPolicy ? { kill_policy: killPolicy } : {}) },
    });
  }

  /** SHUTDOWN of one executor: SHUTDOWN event, then SIGKILL of its tree after the grace period. */
  shutdownExecutor(frameworkId: string, executorId: string): void {
    if (!this.#running) return;
    const ex = this.#executors.get(key(frameworkId, executorId));
    if (!ex || ex.state === "terminated" || ex.state === "terminating") return;
    const wasFetching = ex.state === "fetching";
    ex.state = "terminating";
    clearTimeout(ex.registrationTimer);
    if (wasFetching || !ex.child) {
      this.#terminateExecutor(
        ex,
        "TASK_FAILED",
        "REASON_EXECUTOR_TERMINATED",
        "Executor shut down before it started",
      );
      return;
    }
    ex.stream?.send({ type: "SHUTDOWN" });
    const graceMs = ex.info.shutdown_grace_period
      ? Math.floor(ex.info.shutdown_grace_period.nanoseconds / 1e6)
      : this.options.executorShutdownGracePeriodMs;
    const child = ex.child;
    ex.graceTimer = setTimeout(() => killTree(child.pid, "SIGKILL"), graceMs);
  }

  /** Shuts down every executor of a removed framework and drops its pending updates. */
  shutdownFramework(frameworkId: string): void {
    for (const ex of [...this.#executors.values()]) {
      if (ex.frameworkId === frameworkId) this.shutdownExecutor(frameworkId, ex.executorId);
    }
    this.#updates.dropFramework(frameworkId);
  }

  /** A scheduler ACK forwarded by the master; returns what it acknowledged. */
  acknowledge(
    frameworkId: string,
    taskId: string,
    uuid: Uint8Array,
  ): { status: TaskStatus; finished: boolean } | undefined {
    if (!this.#running) return undefined;
    return this.#updates.acknowledge(frameworkId, taskId, uuid);
  }

  /** Resends the framework's in-flight updates at once (it re-subscribed). */
  resendUpdates(frameworkId: string): void {
    if (this.#running) this.#updates.resend(frameworkId);
  }

  /** Number of the framework's updates not yet acknowledged by the scheduler. */
  pendingUpdates(frameworkId: string): number {
    return this.#updates.pendingCount(frameworkId);
  }

  /** Scheduler MESSAGE to an executor (best effort). */
  sendMessage(frameworkId: string, executorId: string, data: Uint8Array): void {
    if (!this.#running) return;
    this.#executors.get(key(frameworkId, executorId))?.stream?.send({
      type: "MESSAGE",
      message: { data },
    });
  }

  #handle(request: LocalRequest): LocalResponse {
    const path = request.path;
    if (path !== "/api/v1/executor" && path !== "/slave(1)/api/v1/executor") {
      return textResponse(404, `No endpoint at "${path}"`);
    }
    let tokenOf: Executor | undefined;
    if (this.options.authenticateExecutors) {
      const token = bearerToken(request);
      tokenOf = token === undefined
        ? undefined
        : [...this.#executors.values()].find((ex) => ex.token === token);
      if (!tokenOf) {
        return unauthorized("Bearer", "Unauthorized: this agent authenticates executors");
      }
    }
    const parsed = parseCall<ExecutorCall>(request, "mesos.v1.executor.Call");
    if ("response" in parsed) return parsed.response;
    const { call } = parsed;
    const invalid = validateExecutorCall(call);
    if (invalid) return textResponse(400, invalid);
    if (
      tokenOf &&
      (tokenOf.frameworkId !== call.framework_id.value ||
        tokenOf.executorId !== call.executor_id.value)
    ) {
      return textResponse(403, "The token's claims do not match the executor of the call");
    }
    if (call.type === "UNKNOWN") return textResponse(501, "Received 'UNKNOWN' call");
    if (call.type === "HEARTBEAT") return textResponse(202);
    let streamType: ContentType | undefined;
    if (call.type === "SUBSCRIBE") {
      streamType = negotiateStream(request.headers.get("Accept"));
      if (!streamType) {
        return textResponse(
          406,
          "Expecting 'Accept' to allow application/json or application/x-protobuf",
        );
      }
    }
    const fid = call.framework_id.value;
    const ex = this.#executors.get(key(fid, call.executor_id.value));
    if (!ex && !this.#hasFramework(fid)) {
      return textResponse(400, `Framework "${fid}" cannot be found`);
    }
    if (!ex) return textResponse(400, `Executor "${call.executor_id.value}" cannot be found`);
    if (call.type === "SUBSCRIBE") return this.#subscribe(ex, call, streamType!);
    if (!ex.subscribed) {
      return textResponse(403, `Executor "${ex.executorId}" has not subscribed`);
    }
    if (call.type === "MESSAGE") {
      this.#master.executorMessage(this, fid, ex.executorId, call.message!.data);
      return textResponse(202);
    }
    this.#update(ex, call.update!.status);
    return textResponse(202);
  }

  #hasFramework(frameworkId: string): boolean {
    for (const ex of this.#executors.values()) if (ex.frameworkId === frameworkId) return true;
    return false;
  }

  #subscribe(
    ex: Executor,
    call: ExecutorCall,
    contentType: ContentType,
  ): LocalResponse {
    const stream: EventStream = new EventStream("mesos.v1.executor.Event", contentType, () => {
      if (ex.stream === stream) ex.stream = undefined;
    });
    const response: LocalResponse = {
      status: 200,
      headers: { "Content-Type": contentType },
      stream,
    };
    if (ex.state === "terminating" || ex.state === "terminated") {
      stream.send({ type: "SHUTDOWN" });
      stream.close();
      return response;
    }
    const old = ex.stream;
    ex.stream = stream;
    old?.close();
    const resubscribe = ex.subscribed || ex.recovering;
    ex.recovering = false;
    ex.subscribed = true;
    ex.state = "running";
    clearTimeout(ex.registrationTimer);
    stream.send({
      type: "SUBSCRIBED",
      subscribed: {
        executor_info: ex.info,
        framework_info: ex.frameworkInfo,
        agent_info: this.agentInfo(),
        container_id: { value: ex.containerId },
      },
    });
    for (const update of call.subscribe?.unacknowledged_updates ?? []) {
      this.#update(ex, update.status, true);
    }
    if (resubscribe) {
      const listed = new Set(
        (call.subscribe?.unacknowledged_tasks ?? []).map((t) => t.task_id.value),
      );
      const dropped = hasPartitionAware(ex.frameworkInfo) ? "TASK_DROPPED" : "TASK_LOST";
      for (const [taskId, task] of [...ex.tasks]) {
        if (task.launched && task.state === "TASK_STAGING" && !listed.has(taskId)) {
          ex.tasks.delete(taskId);
          this.#agentUpdate(
            ex,
            taskId,
            dropped,
            "REASON_AGENT_RESTARTED",
            "Task was not acknowledged by the re-subscribing executor",
          );
        }
      }
    }
    this.#deliverQueued(ex);
    return response;
  }

  #update(ex: Executor, status: TaskStatus, silent = false): void {
    if (status.agent_id && status.agent_id.value !== this.id) {
      this.options.log(
        `agent ${this.id}: ignoring an update naming agent "${status.agent_id.value}"`,
      );
      return;
    }
    const taskId = status.task_id.value;
    const ack = () => {
      if (!silent || ex.stream) {
        ex.stream?.send({
          type: "ACKNOWLEDGED",
          acknowledged: { task_id: { value: taskId }, uuid: status.uuid },
        });
      }
    };
    const task = ex.tasks.get(taskId);
    if (!task) {
      ack(); // unknown or already terminal: discarded, but acknowledged
      return;
    }
    const stored: TaskStatus = {
      ...status,
      agent_id: { value: this.id },
      executor_id: { value: ex.executorId },
      timestamp: status.timestamp ?? nowSeconds(),
    };
    const result = this.#store(ex.frameworkId, stored);
    if (result === "added") {
      task.state = status.state;
      if (isTerminal(status.state)) ex.tasks.delete(taskId);
    }
    ack();
  }
}

/** Runs `fn` now; a throw becomes a rejection (as from an async function). */
function settled(fn: () => void): Promise<void> {
  try {
    fn();
    return Promise.resolve();
  } catch (error) {
    return Promise.reject(error);
  }
}

function hasPartitionAware(info: FrameworkInfo): boolean {
  return (info.capabilities ?? []).some((c) => c.type === "PARTITION_AWARE");
}

function key(frameworkId: string, executorId: string): string {
  return `${frameworkId}\u0000${executorId}`;
}

/** Checks an executor Call the way the agent does before any lookup (400 on failure). */
export function validateExecutorCall(call: ExecutorCall): string | undefined {
  if (call.type === undefined) return "Expecting 'type' to be present";
  switch (call.type) {
    case "SUBSCRIBE":
      if (!call.subscribe) return "Expecting 'subscribe' to be present";
      break;
    case "MESSAGE":
      if (!call.message) return "Expecting 'message' to be present";
      break;
    case "UPDATE": {
      if (!call.update) return "Expecting 'update' to be present";
      const status = call.update.status;
      if (!status.uuid) return "Expecting 'uuid' to be present";
      if (status.uuid.length !== 16) {
        return `Expecting 'uuid' to be 16 bytes, but got ${status.uuid.length}`;
      }
      if (status.source !== "SOURCE_EXECUTOR") {
        return `Received Call from executor with invalid source "${
          status.source ?? "(none)"
        }", expecting SOURCE_EXECUTOR`;
      }
      if (status.state === "TASK_STAGING") return "Received TASK_STAGING from executor";
      if (status.executor_id && status.executor_id.value !== call.executor_id.value) {
        return `ExecutorID "${status.executor_id.value}" in the status does not match "${call.executor_id.value}" of the Call`;
      }
      break;
    }
  }
  return undefined;
}
